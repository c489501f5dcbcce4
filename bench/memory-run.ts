import { readFileSync } from "node:fs";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { LogGroupTagCache } from "../functions/core/labels/log-group-tags.ts";
import { createLokiPushClient } from "../functions/core/loki/loki-target.ts";
import { logGroupKeySegment } from "../functions/core/storage/chunk-format.ts";
import { runKeys } from "../functions/core/storage/run-store.ts";
import { createWorkflowTasks } from "../functions/core/workflow/workflow-tasks.ts";
import { parseShipperConfig, shipSubscriptionEvent } from "../functions/shipper/ship-subscription.ts";
import { awsBed, REGION } from "./aws-bed.ts";
import { lambdaLogStreamName, logEvents, subscriptionPayload } from "./payloads.ts";

/**
 * One memory run in a fresh process (started by memory.ts): a warm Lambda container of the
 * shipper handling invocation after invocation, or of the replay-chunks function replaying a
 * backfill slice until done. Prints `{ maxRssMb, seconds, events }` as JSON on its last line.
 */
export interface MemoryRunSpec {
  kind: "shipper" | "replay";
  events: number;
  awsEndpoint: string;
  bucket: string;
  pushUrl: string;
  tenant: string;
  /** Shipper: the tagged log group to ship as. Replay: the log group whose slice chunks exist. */
  logGroup: string;
  /** Replay: the run whose chunks were written by the parent. */
  runId?: string;
  eventsPerInvocation: number;
  lineBytes: number;
}

const spec = JSON.parse(process.argv[2] ?? "{}") as MemoryRunSpec;
const bed = awsBed(spec.awsEndpoint);
const logger = new Logger({ serviceName: "loki-shipper-bench", logLevel: "SILENT" });
const started = performance.now();
let delivered = 0;

if (spec.kind === "shipper") {
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  const metrics = new Metrics({ namespace: "LokiShipperBench", serviceName: "loki-shipper-bench" });
  const config = parseShipperConfig({
    AWS_REGION: REGION,
    BUCKET_NAME: spec.bucket,
    LOKI_URL: spec.pushUrl,
    LOKI_TENANT: spec.tenant,
  });
  const deps = {
    s3: bed.s3,
    logs: bed.logs,
    lambda: bed.lambda,
    loki: () => createLokiPushClient(config.loki),
    logger,
    metrics,
    tagCache: new LogGroupTagCache(),
  };
  // A few distinct payloads, made before the first invocation and handed over in turn: making
  // a fresh one per invocation would double the run time; Loki stores a repeated entry once.
  const startMs = Date.now() - 30 * 60_000;
  const payloads = Array.from({ length: 8 }, (_, index) =>
    subscriptionPayload(
      spec.logGroup,
      logEvents(
        spec.eventsPerInvocation,
        spec.lineBytes,
        startMs + index * spec.eventsPerInvocation,
        lambdaLogStreamName(index),
      ),
    ),
  );
  for (let invocation = 0; delivered < spec.events; invocation += 1) {
    const payload = payloads[invocation % payloads.length] as (typeof payloads)[number];
    const deadline = Date.now() + 60_000;
    const result = await shipSubscriptionEvent(
      payload,
      { getRemainingTimeInMillis: () => deadline - Date.now() },
      config,
      deps,
    );
    metrics.publishStoredMetrics();
    if (result.outcome !== "delivered" || result.report.pushed !== spec.eventsPerInvocation)
      throw new Error(`invocation ${invocation} did not deliver everything: ${JSON.stringify(result)}`);
    delivered += result.report.pushed;
  }
} else {
  const tasks = createWorkflowTasks({
    logs: bed.logs,
    s3: bed.s3,
    bucket: spec.bucket,
    env: { LOKI_URL: spec.pushUrl, LOKI_TENANT: spec.tenant },
    logger,
  });
  const runId = spec.runId ?? "";
  const segment = logGroupKeySegment(spec.logGroup);
  const unit = {
    unitId: `backfill-${segment}-s0`,
    source: "backfill" as const,
    prefix: runKeys.sliceChunks(runId, segment, "s0"),
    logGroup: spec.logGroup,
  };
  // Pacing far above what this runs at: the memory of the replay, not the tenant's rate, is measured.
  const options = { bytesPerSecond: 1e12, perStreamBytesPerSecond: 1e12, concurrency: 1 };
  for (;;) {
    const result = await tasks.replayChunks({ runId, unit, options }, 15 * 60_000);
    delivered += result.pushed;
    if (result.status === "done") break;
  }
}

console.log(
  JSON.stringify({ maxRssMb: peakRssMb(), seconds: (performance.now() - started) / 1000, events: delivered }),
);

/**
 * This process's own peak RSS. On Linux `process.resourceUsage().maxRSS` (getrusage) keeps the
 * high-water mark of the process it was forked from across exec, so a child of a big parent
 * reports the parent's size; /proc/self/status VmHWM belongs to this process's memory alone.
 */
function peakRssMb(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (match) return Number(match[1]) / 1024;
  } catch {
    // Not Linux: getrusage is the best there is.
  }
  return process.resourceUsage().maxRSS / 1024;
}
