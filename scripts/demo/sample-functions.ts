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

/** What Lambda measured for one invocation: the figures of its REPORT line. */
interface InvocationReport {
  durationMs: number;
  memorySizeMb: number;
  maxMemoryUsedMb: number;
  /** Only on a cold start. */
  initDurationMs?: number;
}

/** A new execution environment (a cold start with an Init Duration) every this many invocations. */
const INVOCATIONS_PER_ENVIRONMENT = 30;

/** The invocation's number since the epoch, one a minute as the demo schedule invokes them. */
function minuteOf(invokedAtMs: number): number {
  return Math.floor(invokedAtMs / 60_000);
}

function coldStart(invokedAtMs: number): boolean {
  return minuteOf(invokedAtMs) % INVOCATIONS_PER_ENVIRONMENT === 0;
}

/** Lambda's text log format: START, the function's lines, END and the REPORT line. */
function textEnvelope(requestId: string, body: string[], report: InvocationReport): string[] {
  const figures = [
    `Duration: ${report.durationMs.toFixed(2)} ms`,
    `Billed Duration: ${Math.ceil(report.durationMs)} ms`,
    `Memory Size: ${report.memorySizeMb} MB`,
    `Max Memory Used: ${report.maxMemoryUsedMb} MB`,
    ...(report.initDurationMs === undefined ? [] : [`Init Duration: ${report.initDurationMs.toFixed(2)} ms`]),
  ];
  return [
    `START RequestId: ${requestId} Version: $LATEST`,
    ...body,
    `END RequestId: ${requestId}`,
    `REPORT RequestId: ${requestId}\t${figures.join("\t")}\t`,
  ];
}

/** Lambda's JSON log format: platform.start, the function's JSON lines, platform.report. */
function jsonEnvelope(
  requestId: string,
  invokedAtMs: number,
  body: string[],
  report: InvocationReport,
): string[] {
  const time = (offsetMs: number) => new Date(invokedAtMs + offsetMs).toISOString();
  const metrics = {
    durationMs: report.durationMs,
    billedDurationMs: Math.ceil(report.durationMs),
    memorySizeMB: report.memorySizeMb,
    maxMemoryUsedMB: report.maxMemoryUsedMb,
    ...(report.initDurationMs === undefined ? {} : { initDurationMs: report.initDurationMs }),
  };
  return [
    JSON.stringify({ time: time(0), type: "platform.start", record: { requestId, version: "$LATEST" } }),
    ...body,
    JSON.stringify({
      time: time(Math.ceil(report.durationMs)),
      type: "platform.report",
      record: { requestId, metrics, status: "success" },
    }),
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
      const orderId = minuteOf(invokedAtMs) % 100_000;
      const body = [
        `[INFO]\t${new Date(invokedAtMs).toISOString()}\t${requestId}\tprocessing order ${orderId}`,
      ];
      if (orderId % 17 === 0) {
        body.push(
          `[ERROR]\t${new Date(invokedAtMs).toISOString()}\t${requestId}\tpayment failed\nTraceback (most recent call last):\n  File "/var/task/app.py", line 12, in handler\n    charge(order)\nValueError: card declined`,
        );
      }
      return textEnvelope(requestId, body, {
        durationMs: 20 + (orderId % 40) + 0.25,
        memorySizeMb: 128,
        maxMemoryUsedMb: 60 + (orderId % 20),
        ...(coldStart(invokedAtMs) ? { initDurationMs: 180.5 } : {}),
      });
    },
  },
  {
    functionName: "fun-node",
    logGroupName: "/aws/lambda/fun-node",
    runtime: "nodejs22.x",
    tags: { name: "fun-node", owner: "demo-team", system_under_test: "webshop" },
    // Logs in Lambda's JSON format, and runs close to its 128 MB: some invocations use over 90 %.
    invocationLines(invokedAtMs) {
      const requestId = randomUUID();
      const minute = minuteOf(invokedAtMs);
      const body = [
        JSON.stringify({
          timestamp: new Date(invokedAtMs + 1).toISOString(),
          level: "INFO",
          requestId,
          message: { msg: "cart updated", items: minute % 7, currency: "€" },
        }),
      ];
      return jsonEnvelope(requestId, invokedAtMs, body, {
        durationMs: 5 + (minute % 9) + 0.5,
        memorySizeMb: 128,
        maxMemoryUsedMb: 110 + (minute % 16),
        ...(coldStart(invokedAtMs) ? { initDurationMs: 145.75 } : {}),
      });
    },
  },
];
