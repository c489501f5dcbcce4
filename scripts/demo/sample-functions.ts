import { randomUUID } from "node:crypto";

/**
 * The two sample functions of the demo. Their IaC tags the *functions*; Lambda creates their log
 * groups untagged, and the shipper takes the labels from the function's tags and runtime.
 */
export interface SampleFunction {
  functionName: string;
  /** Lambda's own log group of the function. */
  logGroupName: string;
  runtime: "python3.12" | "nodejs22.x";
  /** The function's tags (`runtime` is not one: it comes from the function's configuration). */
  tags: Record<string, string>;
  /** The lines one invocation writes, as the Lambda runtime and the function's code would. */
  invocationLines(invokedAtMs: number): string[];
}

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
    functionName: "fun-python",
    logGroupName: "/aws/lambda/fun-python",
    runtime: "python3.12",
    tags: { name: "fun-python", owner: "demo-team", system_under_test: "webshop" },
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
    functionName: "fun-node",
    logGroupName: "/aws/lambda/fun-node",
    runtime: "nodejs22.x",
    tags: { name: "fun-node", owner: "demo-team", system_under_test: "webshop" },
    invocationLines(invokedAtMs) {
      const requestId = randomUUID();
      const body = [
        `${new Date(invokedAtMs).toISOString()}\t${requestId}\tINFO\t${JSON.stringify({ msg: "cart updated", items: ((invokedAtMs / 60_000) % 7) | 0, currency: "€" })}`,
      ];
      return lambdaEnvelope(requestId, body, 5 + ((invokedAtMs / 60_000) % 9));
    },
  },
];
