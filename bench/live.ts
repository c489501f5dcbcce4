import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { LogGroupTagCache } from "../functions/core/labels/log-group-tags.ts";
import { createLokiPushClient } from "../functions/core/loki/loki-target.ts";
import { parseShipperConfig, shipSubscriptionEvent } from "../functions/shipper/ship-subscription.ts";
import { type AwsBed, createTaggedLogGroup, REGION } from "./aws-bed.ts";
import { lambdaLogStreamName, logEvents, subscriptionPayload } from "./payloads.ts";

/**
 * Live shipping end to end: realistic subscription payloads through the shipper's core
 * (`shipSubscriptionEvent`: decode, tags from CloudWatch, labels, deliverEvents with its retries
 * and spill), several invocations in flight like concurrent Lambda invocations, into Loki.
 */

export interface LiveOptions {
  bed: AwsBed;
  bucket: string;
  pushUrl: string;
  tenant: string;
  format: "protobuf" | "json";
  logGroups: number;
  payloads: number;
  eventsPerPayload: number;
  lineBytes: number;
  inFlight: number;
  /** Invocations that finish before this are not counted in the rate (JIT, the tenant's burst). */
  warmUpMs: number;
  runLabel: string;
  /** Further shipper settings (e.g. `LOKI_SHARD_STREAMS_ENABLED`), over the ones above. */
  extraEnv?: Record<string, string>;
}

export interface LiveResult {
  tenant: string;
  inFlight: number;
  events: number;
  eventsPerSecond: number;
  lineMegabytesPerSecond: number;
  pushed: number;
  spilled: number;
  refused: number;
  retries: number;
  requests: number;
  /** Push requests per GB of lines shipped: every push carries one stream (splitIntoRequests). */
  pushesPerGb: number;
  seconds: number;
  /** Events per CPU second of this process over the whole run: the shipper's full cost per event. */
  eventsPerCpuSecond: number;
}

export async function prepareLiveRun(options: LiveOptions): Promise<{ awslogs: { data: string } }[]> {
  const groups: string[] = [];
  for (let index = 0; index < options.logGroups; index += 1) {
    const name = `/aws/lambda/bench-${options.runLabel}-fn${index}`;
    await createTaggedLogGroup(options.bed, name, {
      runtime: index % 2 === 0 ? "nodejs" : "python",
      name: `bench-fn${index}`,
      owner: "team-bench",
      "team-name": "payments",
      bench_run: options.runLabel,
    });
    groups.push(name);
  }
  const startMs = Date.now() - 2 * 60_000;
  return Array.from({ length: options.payloads }, (_, index) => {
    const group = groups[index % groups.length] as string;
    const events = logEvents(
      options.eventsPerPayload,
      options.lineBytes,
      startMs + index * 10,
      lambdaLogStreamName(index),
    );
    return subscriptionPayload(group, events);
  });
}

export async function measureLive(
  options: LiveOptions,
  payloads: { awslogs: { data: string } }[],
): Promise<LiveResult> {
  const config = parseShipperConfig({
    AWS_REGION: REGION,
    BUCKET_NAME: options.bucket,
    LOKI_URL: options.pushUrl,
    LOKI_TENANT: options.tenant,
    LOKI_PUSH_FORMAT: options.format,
    ...options.extraEnv,
  });
  const logger = new Logger({ serviceName: "loki-shipper-bench", logLevel: "SILENT" });
  // Metrics are recorded and published as in the handler, but not printed.
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  const metrics = new Metrics({ namespace: "LokiShipperBench", serviceName: "loki-shipper-bench" });
  const tagCache = new LogGroupTagCache();
  const deps = {
    s3: options.bed.s3,
    logs: options.bed.logs,
    lambda: options.bed.lambda,
    loki: () => createLokiPushClient(config.loki),
    logger,
    metrics,
    tagCache,
  };
  const totals = { pushed: 0, spilled: 0, refused: 0, retries: 0, requests: 0 };
  let countedEvents = 0;
  const queue = [...payloads];
  const cpuStarted = process.cpuUsage();
  const started = performance.now();
  const warmUpEnds = started + options.warmUpMs;
  let lastDone = started;
  const invoke = async () => {
    for (let payload = queue.shift(); payload; payload = queue.shift()) {
      // Lambda's default timeout in this project is 60 s.
      const deadline = Date.now() + 60_000;
      const result = await shipSubscriptionEvent(
        payload,
        { getRemainingTimeInMillis: () => deadline - Date.now() },
        config,
        deps,
      );
      metrics.publishStoredMetrics();
      if (result.outcome !== "delivered") throw new Error(`unexpected outcome ${result.outcome}`);
      const report = result.report;
      totals.pushed += report.pushed;
      totals.spilled += report.spilled;
      totals.refused += Object.values(report.refused).reduce((sum, count) => sum + count, 0);
      totals.retries += report.retries;
      totals.requests += report.requests;
      lastDone = performance.now();
      if (lastDone > warmUpEnds) countedEvents += report.pushed;
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, () => invoke()));
  const cpu = process.cpuUsage(cpuStarted);
  // A run over before the warm-up ended (a quick run) is measured whole, warm-up included.
  const wholeRun = lastDone - warmUpEnds < 1_000;
  const rateEvents = wholeRun ? totals.pushed : countedEvents;
  const seconds = (wholeRun ? lastDone - started : lastDone - warmUpEnds) / 1000;
  const events = payloads.length * options.eventsPerPayload;
  return {
    tenant: options.tenant,
    inFlight: options.inFlight,
    events,
    eventsPerSecond: rateEvents / seconds,
    lineMegabytesPerSecond: (rateEvents * options.lineBytes) / 1e6 / seconds,
    ...totals,
    pushesPerGb: totals.requests / ((totals.pushed * options.lineBytes) / 1e9),
    seconds: (lastDone - started) / 1000,
    eventsPerCpuSecond: totals.pushed / ((cpu.user + cpu.system) / 1e6),
  };
}
