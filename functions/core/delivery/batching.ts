import {
  DEFAULT_EVENT_LABEL_OPTIONS,
  type EventLabelOptions,
  LOG_STREAM_LABEL,
  TIME_SHARD_LABEL,
} from "../labels/labels.ts";
import type { LogEvent } from "../log-event.ts";
import { streamKey } from "../loki/label-text.ts";
import type { LokiLimits } from "../loki/loki-client.ts";
import { ENTRY_OVERHEAD_BYTES, type PushEntry, type PushStream } from "../loki/loki-push.ts";
import type { RefusalKind } from "../loki/loki-response.ts";
import { lambdaReportFields } from "./lambda-report.ts";
import { lambdaRequestId, REQUEST_ID_METADATA } from "./request-id.ts";
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
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most lines need no measuring.
  const lineBytes = event.message.length * 3 <= limits.maxLineSize ? 0 : Buffer.byteLength(event.message);
  if (lineBytes > limits.maxLineSize) {
    return {
      event,
      kind: "line_too_long",
      reason: `line too long: ${lineBytes} bytes, over the target's max_line_size of ${limits.maxLineSize} bytes`,
    };
  }
  return undefined;
}

/** Bytes the `request_id` metadata pair adds to an entry (a UUID is 36 ASCII characters). */
const REQUEST_ID_PAIR_BYTES = REQUEST_ID_METADATA.length + 36 + 4;

/**
 * Groups events into Loki streams: the group's labels plus `time_shard` (and `log_stream` when
 * asked for); entries of a stream sorted by timestamp. High-cardinality values go into
 * structured metadata instead of labels, and so do the figures of Lambda's report lines.
 */
export function buildStreams(groups: StreamSource[]): TrackedStream[] {
  const streams = new Map<string, TrackedStream>();
  for (const group of groups) {
    const options = group.eventLabels ?? DEFAULT_EVENT_LABEL_OPTIONS;
    const streamOf = groupStreams(group, options, streams);
    const metadataOf = entryMetadata(options);
    for (const event of group.events) {
      const { metadata, bytes: metadataBytes } = metadataOf(event);
      const lineBytes = Buffer.byteLength(event.message);
      streamOf(event).entries.push({
        ns: eventNanoseconds(event.timestamp, event.id),
        line: event.message,
        lineBytes,
        metadata,
        event,
        logGroup: group.logGroup,
        groupLabels: group.labels,
        size: lineBytes + ENTRY_OVERHEAD_BYTES + metadataBytes,
      });
    }
  }
  const sorted = [...streams.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const stream of sorted) stream.entries.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
  return sorted;
}

/** A group's events for buildStreams; the groups of one call go to one tenant (same labels, same stream). */
export interface StreamSource {
  logGroup: string;
  labels: Record<string, string>;
  events: LogEvent[];
  eventLabels?: EventLabelOptions;
}

/**
 * The stream of each event of a group, by what varies per event (hour, and log stream when it is
 * a label): the label set is built and formatted once per stream, and consecutive events of the
 * same stream (the usual case) skip even the lookup.
 */
function groupStreams(
  group: StreamSource,
  options: EventLabelOptions,
  streams: Map<string, TrackedStream>,
): (event: LogEvent) => TrackedStream {
  const byVariant = new Map<string, TrackedStream>();
  let lastShard = "";
  let lastLogStream: string | undefined;
  let last: TrackedStream | undefined;
  return (event) => {
    const shard = timeShard(event.timestamp);
    const logStreamLabel = options.logStreamLabel && event.logStream ? event.logStream : undefined;
    if (last && shard === lastShard && logStreamLabel === lastLogStream) return last;
    const variant = logStreamLabel === undefined ? shard : `${shard}\u0000${logStreamLabel}`;
    let stream = byVariant.get(variant);
    if (!stream) {
      const labels = streamLabels(group.labels, shard, logStreamLabel);
      const key = streamKey(labels);
      stream = streams.get(key) ?? { key, labels, entries: [] };
      streams.set(key, stream);
      byVariant.set(variant, stream);
    }
    lastShard = shard;
    lastLogStream = logStreamLabel;
    last = stream;
    return stream;
  };
}

interface EntryMetadata {
  logStream: string;
  requestId: string;
  metadata: [string, string][] | undefined;
  /** What the pairs add to the entry's size (see ENTRY_OVERHEAD_BYTES). */
  bytes: number;
}

const NO_METADATA: EntryMetadata = { logStream: "", requestId: "", metadata: undefined, bytes: 0 };

/**
 * The structured metadata of each event of a group: `log_stream` (unless it is a label) and the
 * Lambda request id of the line. Consecutive events of one invocation share one metadata array
 * (fewer objects to collect, and the push encoder reuses its bytes): it is never changed in place.
 */
function entryMetadata(options: EventLabelOptions): (event: LogEvent) => EntryMetadata {
  let last = NO_METADATA;
  return (event) => {
    if (!options.structuredMetadata) return NO_METADATA;
    const logStream = options.logStreamLabel ? "" : event.logStream;
    const requestId = lambdaRequestId(event.message) ?? "";
    // A report line's figures are its own: only entries without them share an array.
    const report = lambdaReportFields(event.message);
    if (!report && logStream === last.logStream && requestId === last.requestId) return last;
    const metadata: [string, string][] = [];
    let bytes = 0;
    if (logStream) {
      metadata.push([LOG_STREAM_LABEL, logStream]);
      bytes += LOG_STREAM_LABEL.length + Buffer.byteLength(logStream) + 4;
    }
    if (requestId) {
      metadata.push([REQUEST_ID_METADATA, requestId]);
      bytes += REQUEST_ID_PAIR_BYTES;
    }
    for (const [name, value] of report ?? []) {
      metadata.push([name, value]);
      bytes += name.length + value.length + 4;
    }
    const built = { logStream, requestId, metadata: metadata.length > 0 ? metadata : undefined, bytes };
    if (!report) last = built;
    return built;
  };
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
