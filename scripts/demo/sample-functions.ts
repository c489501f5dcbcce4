import { randomUUID } from "node:crypto";

/** The two sample functions of the demo, tagged as a deployment of this project would tag them. */
export interface SampleFunction {
  logGroupName: string;
  tags: Record<string, string>;
  /** The lines one invocation writes, as the Lambda runtime and the function's code would. */
  invocationLines(invokedAtMs: number): string[];
}

const REGION = "eu-central-1";

function lambdaEnvelope(requestId: string, body: string[], durationMs: number): string[] {
  return [
    `START RequestId: ${requestId} Version: $LATEST`,
    ...body,
    `END RequestId: ${requestId}`,
    `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${Math.ceil(durationMs)} ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB`,
  ];
}

export const SAMPLE_FUNCTIONS: SampleFunction[] = [
  {
    logGroupName: "/aws/lambda/fun-python",
    tags: {
      name: "fun-python",
      owner: "demo-team",
      runtime: "python",
      region: REGION,
      system_under_test: "webshop",
    },
    invocationLines(invokedAtMs) {
      const requestId = randomUUID();
      const orderId = Math.floor(invokedAtMs / 60_000) % 100_000;
      const body = [
        `[INFO]\t${new Date(invokedAtMs).toISOString()}\t${requestId}\tprocessing order ${orderId}`,
      ];
      if (orderId % 17 === 0) {
        body.push(
          `[ERROR]\t${new Date(invokedAtMs).toISOString()}\t${requestId}\tpayment failed\nTraceback (most recent call last):\n  File "/var/task/app.py", line 12, in handler\n    charge(order)\nValueError: card declined`,
        );
      }
      return lambdaEnvelope(requestId, body, 20 + (orderId % 40));
    },
  },
  {
    logGroupName: "/aws/lambda/fun-node",
    tags: {
      name: "fun-node",
      owner: "demo-team",
      runtime: "nodejs",
      region: REGION,
      system_under_test: "webshop",
    },
    invocationLines(invokedAtMs) {
      const requestId = randomUUID();
      const body = [
        `${new Date(invokedAtMs).toISOString()}\t${requestId}\tINFO\t${JSON.stringify({ msg: "cart updated", items: ((invokedAtMs / 60_000) % 7) | 0, currency: "€" })}`,
      ];
      return lambdaEnvelope(requestId, body, 5 + ((invokedAtMs / 60_000) % 9));
    },
  },
];
