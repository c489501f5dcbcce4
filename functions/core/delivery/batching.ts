import {
  DEFAULT_EVENT_LABEL_OPTIONS,
  type EventLabelOptions,
  LOG_STREAM_LABEL,
  TIME_SHARD_LABEL,
} from "../labels/labels.ts";
import type { LogEvent } from "../log-event.ts";
import type { LokiLimits } from "../loki/loki-client.ts";
import { entrySize, type PushEntry, type PushStream, streamKey } from "../loki/loki-push.ts";
import type { RefusalKind } from "../loki/loki-response.ts";
import { lambdaReportFields } from "./lambda-report.ts";
import { eventNanoseconds, timeShard } from "./timestamps.ts";

/** A push entry that remembers the event and log group it came from (for spill and rejected/). */
export interface TrackedEntry extends PushEntry {
  event: LogEvent;
  logGroup: string;
  groupLabels: Record<string, string>;
  size: number;
}

export interface TrackedStream extends PushStream {
  key: string;
  entries: TrackedEntry[];
}

export interface PrecheckRefusal {
  event: LogEvent;
  kind: RefusalKind;
  reason: string;
}

/**
 * Refusals Loki would give, decided before pushing so that every entry's fate is known: too old
 * (`reject_old_samples_max_age`), too new (`creation_grace_period`) and line size
 * (`max_line_size`), https://grafana.com/docs/loki/latest/configure/#limits_config. A small
 * margin keeps entries at the edge from being refused by Loki's clock a moment later.
 */
export const PRECHECK_MARGIN_MS = 30_000;

export function precheckEvent(
  event: LogEvent,
  limits: LokiLimits,
  nowMs: number,
): PrecheckRefusal | undefined {
  const oldest = nowMs - limits.rejectOldSamplesMaxAgeMs + PRECHECK_MARGIN_MS;
  if (event.timestamp < oldest) {
    return {
      event,
      kind: "too_old",
      reason: `timestamp too old: ${new Date(event.timestamp).toISOString()} is older than the target's reject_old_samples_max_age (${limits.rejectOldSamplesMaxAgeMs} ms)`,
    };
  }
  const newest = nowMs + limits.creationGracePeriodMs - PRECHECK_MARGIN_MS;
  if (event.timestamp > newest) {
    return {
      event,
      kind: "too_new",
      reason: `timestamp too new: ${new Date(event.timestamp).toISOString()} is further ahead than the target's creation_grace_period (${limits.creationGracePeriodMs} ms)`,
    };
  }
  const lineBytes = Buffer.byteLength(event.message);
  if (lineBytes > limits.maxLineSize) {
    return {
      event,
      kind: "line_too_long",
      reason: `line too long: ${lineBytes} bytes, over the target's max_line_size of ${limits.maxLineSize} bytes`,
    };
  }
  return undefined;
}

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const REQUEST_ID_PATTERNS = [
  // START / END / REPORT lines of the Lambda runtime.
  new RegExp(`RequestId: (${UUID})`),
  // Node.js and Python runtimes' default text format: "<time>\t<request id>\t<LEVEL>\t<message>".
  new RegExp(`^\\S+\\t(${UUID})\\t`),
  // JSON logs (Powertools, Lambda's JSON log format).
  new RegExp(
    `"(?:requestId|request_id|awsRequestId|aws_request_id|function_request_id)"\\s*:\\s*"(${UUID})"`,
  ),
];

/** Runtimes and loggers put the request id near the start of a line; scanning more costs CPU for nothing. */
const REQUEST_ID_SCAN_CHARS = 1024;

/** The Lambda request id a log line carries, if any. */
export function lambdaRequestId(line: string): string | undefined {
  const head = line.length > REQUEST_ID_SCAN_CHARS ? line.slice(0, REQUEST_ID_SCAN_CHARS) : line;
  for (const pattern of REQUEST_ID_PATTERNS) {
    const match = pattern.exec(head);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * Groups events into Loki streams: the group's labels plus `time_shard` (and `log_stream` when
 * asked for); entries of a stream sorted by timestamp. High-cardinality values go into
 * structured metadata instead of labels, and so do the figures of Lambda's report lines.
 */
export function buildStreams(
  groups: {
    logGroup: string;
    labels: Record<string, string>;
    events: LogEvent[];
    eventLabels?: EventLabelOptions;
  }[],
): TrackedStream[] {
  const streams = new Map<string, TrackedStream>();
  for (const group of groups) {
    const options = group.eventLabels ?? DEFAULT_EVENT_LABEL_OPTIONS;
    // The group's streams by what varies per event (hour, and log stream when it is a label), so
    // that the label set is built and formatted once per stream, not once per event.
    const groupStreams = new Map<string, TrackedStream>();
    for (const event of group.events) {
      const shard = timeShard(event.timestamp);
      const logStreamLabel = options.logStreamLabel && event.logStream ? event.logStream : undefined;
      const variant = logStreamLabel === undefined ? shard : `${shard}\u0000${logStreamLabel}`;
      let stream = groupStreams.get(variant);
      if (!stream) {
        const labels = streamLabels(group.labels, shard, logStreamLabel);
        const key = streamKey(labels);
        stream = streams.get(key) ?? { key, labels, entries: [] };
        streams.set(key, stream);
        groupStreams.set(variant, stream);
      }
      const metadata: [string, string][] = [];
      if (options.structuredMetadata) {
        if (!options.logStreamLabel && event.logStream) metadata.push([LOG_STREAM_LABEL, event.logStream]);
        const requestId = lambdaRequestId(event.message);
        if (requestId) metadata.push(["request_id", requestId]);
        const report = lambdaReportFields(event.message);
        if (report) metadata.push(...report);
      }
      const entry: TrackedEntry = {
        ns: eventNanoseconds(event.timestamp, event.id),
        line: event.message,
        ...(metadata.length > 0 ? { metadata } : {}),
        event,
        logGroup: group.logGroup,
        groupLabels: group.labels,
        size: 0,
      };
      entry.size = entrySize(entry);
      stream.entries.push(entry);
    }
  }
  const sorted = [...streams.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const stream of sorted) stream.entries.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  return sorted;
}

/** A stream's labels: the group's, its hour, and the log stream when that is a label. */
function streamLabels(
  groupLabels: Record<string, string>,
  shard: string,
  logStreamLabel: string | undefined,
): Record<string, string> {
  const labels: Record<string, string> = { ...groupLabels, [TIME_SHARD_LABEL]: shard };
  if (logStreamLabel !== undefined) labels[LOG_STREAM_LABEL] = logStreamLabel;
  return labels;
}

/** The keys of the Loki streams `events` of one group go to (as buildStreams makes them). */
export function streamKeysOf(
  groupLabels: Record<string, string>,
  events: LogEvent[],
  eventLabels: EventLabelOptions = DEFAULT_EVENT_LABEL_OPTIONS,
): Set<string> {
  const keys = new Map<string, string>();
  for (const event of events) {
    const shard = timeShard(event.timestamp);
    const logStreamLabel = eventLabels.logStreamLabel && event.logStream ? event.logStream : undefined;
    const variant = logStreamLabel === undefined ? shard : `${shard}\u0000${logStreamLabel}`;
    if (!keys.has(variant)) keys.set(variant, streamKey(streamLabels(groupLabels, shard, logStreamLabel)));
  }
  return new Set(keys.values());
}

/**
 * Cuts streams into push requests of ONE stream each, at most `maxBytes` decoded bytes and
 * `maxEntries` entries. Loki answers a multi-stream push with the error of its last stream only
 * (Loki 3.4 `instance.Push` keeps a single `appendErr`): a refusal of an earlier stream (active
 * stream limit, per-stream rate limit) would come back as 204 and its entries would be lost
 * without a trace. One stream per request makes every answer about every entry it carries.
 * A long stream is cut into several requests, in timestamp order.
 */
export function splitIntoRequests(
  streams: TrackedStream[],
  maxBytes: number,
  maxEntries: number,
): TrackedStream[] {
  const requests: TrackedStream[] = [];
  for (const stream of streams) {
    const labelBytes = stream.key.length;
    let part: TrackedStream | undefined;
    let bytes = 0;
    for (const entry of stream.entries) {
      if (part && (bytes + entry.size > maxBytes || part.entries.length + 1 > maxEntries)) part = undefined;
      if (!part) {
        part = { key: stream.key, labels: stream.labels, entries: [] };
        requests.push(part);
        bytes = labelBytes;
      }
      part.entries.push(entry);
      bytes += entry.size;
    }
  }
  return requests;
}
