import { buildStreams, precheckEvent, splitIntoRequests } from "../functions/core/delivery/batching.ts";
import { RuleSet } from "../functions/core/delivery/rules.ts";
import { defaultLabelOptions, resolveGroupLabels } from "../functions/core/labels/labels.ts";
import type { LokiLimits } from "../functions/core/loki/loki-client.ts";
import { encodePush, type PushFormat } from "../functions/core/loki/loki-push.ts";
import { decodeSubscriptionData } from "../functions/shipper/subscription.ts";
import { lambdaLogStreamName, logEvents, subscriptionPayload } from "./payloads.ts";
import { fmt, markdownTable } from "./table.ts";

/**
 * The live shipper's CPU work per invocation, without network: decode (base64, gunzip, JSON,
 * shape check), labels from tags, pre-checks, deterministic timestamps, streams, batching and push
 * encoding. Single-threaded, so events/s here is events/s per core.
 */

export const TRANSFORM_FORMATS: { name: string; format: PushFormat }[] = [
  { name: "protobuf+snappy", format: "protobuf" },
  { name: "json+gzip", format: "json" },
];

/** Loki's defaults, as the shipper pre-checks them. */
const LIMITS: LokiLimits = {
  rejectOldSamplesMaxAgeMs: 168 * 3_600_000,
  creationGracePeriodMs: 10 * 60_000,
  maxLineSize: 256 * 1024,
};
/** The shipper's defaults (LOKI_BATCH_MAX_BYTES, LOKI_BATCH_MAX_ENTRIES). */
const MAX_BATCH_BYTES = 1024 * 1024;
const MAX_BATCH_ENTRIES = 10_000;
const TAGS = {
  runtime: "nodejs",
  name: "fun-orders",
  owner: "team-a",
  "team-name": "payments",
  "aws:cloudformation:stack-name": "orders-prod",
};
const labelOptions = defaultLabelOptions();

export interface TransformOutput {
  requests: number;
  wireBytes: number;
}

/** One invocation's work on `data` (the `awslogs.data` string), with the drop and mask rules given. */
export function transformPayload(
  data: string,
  format: PushFormat,
  nowMs = Date.now(),
  rules: RuleSet = RuleSet.empty,
): TransformOutput {
  const message = decodeSubscriptionData(data);
  if (message.messageType !== "DATA_MESSAGE") throw new Error("expected a DATA_MESSAGE");
  const shaped = rules.shape(message.logGroup, message.events).events;
  const { labels, eventLabels } = resolveGroupLabels(message.logGroup, { groupTags: TAGS }, labelOptions, {
    accountId: message.owner,
    region: "eu-central-1",
  });
  const events = shaped.filter((event) => precheckEvent(event, LIMITS, nowMs) === undefined);
  const streams = buildStreams([{ logGroup: message.logGroup, labels, events, eventLabels }]);
  const requests = splitIntoRequests(streams, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES);
  let wireBytes = 0;
  for (const request of requests) wireBytes += encodePush([request], format).body.length;
  return { requests: requests.length, wireBytes };
}

export interface TransformRow {
  events: number;
  lineBytes: number;
  format: string;
  runs: number;
  medianMs: number;
  /** Wall clock; on a loaded machine it counts time other processes had the core. */
  eventsPerSecond: number;
  /** Events per second of this process's CPU time (user + system): the per-core rate. */
  eventsPerCpuSecond: number;
  /** Line bytes per CPU second, MB (10^6). */
  megabytesPerSecond: number;
  requests: number;
  wireMegabytes: number;
}

export function transformPayloadFor(count: number, lineBytes: number): string {
  const events = logEvents(count, lineBytes, Date.now() - 60_000, lambdaLogStreamName(1));
  return subscriptionPayload("/aws/lambda/fun-orders", events).awslogs.data;
}

/** Median of several runs after a JIT warm-up, each on the same payload. */
export function measureTransform(count: number, lineBytes: number, format: string): TransformRow {
  const pushFormat = TRANSFORM_FORMATS.find((entry) => entry.name === format)?.format ?? "protobuf";
  const data = transformPayloadFor(count, lineBytes);
  const big = count * lineBytes > 20e6;
  const { runs, medianMs, medianCpuMs, last } = timeRuns(big ? 3 : 7, big ? 1 : 3, () =>
    transformPayload(data, pushFormat),
  );
  return {
    events: count,
    lineBytes,
    format,
    runs,
    medianMs,
    eventsPerSecond: count / (medianMs / 1000),
    eventsPerCpuSecond: count / (medianCpuMs / 1000),
    megabytesPerSecond: (count * lineBytes) / 1e6 / (medianCpuMs / 1000),
    requests: last.requests,
    wireMegabytes: last.wireBytes / 1e6,
  };
}

/** Median wall and CPU time of `runs` calls of `work` after `warmUps` JIT warm-up calls. */
export function timeRuns<T>(
  runs: number,
  warmUps: number,
  work: () => T,
): { runs: number; medianMs: number; medianCpuMs: number; last: T } {
  for (let run = 0; run < warmUps; run += 1) work();
  const durations: number[] = [];
  const cpuDurations: number[] = [];
  let last = work();
  for (let run = 0; run < runs; run += 1) {
    const cpuStarted = process.cpuUsage();
    const started = performance.now();
    last = work();
    durations.push(performance.now() - started);
    const cpu = process.cpuUsage(cpuStarted);
    cpuDurations.push((cpu.user + cpu.system) / 1000);
  }
  return { runs, medianMs: median(durations), medianCpuMs: median(cpuDurations), last };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Section 1 as a Markdown table. */
export function transformTable(rows: TransformRow[]): string {
  return markdownTable(
    [
      "events",
      "line B",
      "format",
      "events/s per core (CPU)",
      "MB/s per core",
      "events/s (wall)",
      "pushes",
      "wire MB",
    ],
    rows.map((row) => [
      fmt.int(row.events),
      fmt.int(row.lineBytes),
      row.format,
      fmt.int(row.eventsPerCpuSecond),
      fmt.fixed(row.megabytesPerSecond),
      fmt.int(row.eventsPerSecond),
      row.requests,
      fmt.fixed(row.wireMegabytes, 2),
    ]),
  );
}
