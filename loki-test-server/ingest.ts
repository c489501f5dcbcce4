import { HttpError } from "./errors.ts";
import { formatLabels, type LabelPairs, withServiceName } from "./labels.ts";
import type { LimitsRegistry, TenantLimits } from "./limits.ts";
import type { DecodedEntry, DecodedStream } from "./push-decode.ts";
import { TokenBucket } from "./rate-limiter.ts";
import type { LogStore, Stream } from "./store.ts";
import { StreamRates } from "./stream-rates.ts";
import { type OutgoingStream, SHARD_LABEL, StreamSharder } from "./stream-sharding.ts";
import { formatGoTime, formatRfc3339, msToNs, nowNs } from "./time-format.ts";

const MiB = 1024 * 1024;
/** Loki's ingester lists at most this many refused entries (`ingester.max-ignored-stream-errors`, 10). */
const MAX_RETURNED_ERRORS = 10;
/**
 * Ingester `chunk_idle_period` default (30m): a stream without pushes for this long is flushed and no
 * longer counts as active for `max_global_streams_per_user`.
 */
export const DEFAULT_CHUNK_IDLE_PERIOD_MS = 30 * 60_000;
/** Protobuf overhead of an entry besides line and metadata (timestamp message and field headers). */
const ENTRY_PROTO_OVERHEAD = 20;
/** Size of the `detected_level` metadata Loki adds to every entry, in the ingester message. */
const DETECTED_LEVEL_PROTO_SIZE = 30;

/**
 * Distributor validation errors, grouped by message as Loki's `util.GroupedErrors` does: one
 * error alone is its message, else "<n> errors like: <message>" joined with "; ".
 */
class GroupedErrors {
  readonly #counts = new Map<string, number>();
  add(message: string): void {
    this.#counts.set(message, (this.#counts.get(message) ?? 0) + 1);
  }
  get empty(): boolean {
    return this.#counts.size === 0;
  }
  toString(): string {
    const [first] = this.#counts;
    if (this.#counts.size === 1 && first && first[1] === 1) return first[0];
    return [...this.#counts].map(([message, count]) => `${count} errors like: ${message}`).join("; ");
  }
}

/** A stream as it reaches the ingester: a validated stream of the push, or one of its shards. */
type ValidStream = OutgoingStream<DecodedEntry>;

/** Human byte size as Go's humanize.Bytes prints it in Loki's per-stream rate limit message. */
function humanBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${units[unit]}`;
}

/** What distributor validation kept of a push, and the sizes the tenant limits are checked on. */
interface ValidatedPush {
  valid: ValidStream[];
  errors: GroupedErrors;
  bytes: number;
  lines: number;
  /** Estimated size of the distributor → ingester message. */
  messageSize: number;
}

function metadataBytes(entry: DecodedEntry): number {
  let bytes = 0;
  if (entry.metadata) for (const [name, value] of entry.metadata) bytes += name.length + value.length;
  return bytes;
}

export interface IngesterOptions {
  /** Ingester `chunk_idle_period`: how long a stream without pushes stays active (default 30m). */
  chunkIdlePeriodMs?: number;
  /** The stream rates stream sharding is decided on (default: on the wall clock, 1s ticks). */
  streamRates?: StreamRates;
}

/**
 * Applies a decoded push to the store with the rules of Loki 3.4 (distributor validation, tenant
 * rate limit, distributor → ingester message limit, then the ingester's per-stream checks) and
 * returns nothing on success or throws the HttpError Loki would answer with.
 */
export class Ingester {
  readonly #store: LogStore;
  readonly #limits: LimitsRegistry;
  readonly #chunkIdlePeriodMs: number;
  readonly #tenantBuckets = new Map<string, { bucket: TokenBucket; version: number }>();
  readonly #rates: StreamRates;
  readonly #sharder: StreamSharder;

  constructor(store: LogStore, limits: LimitsRegistry, options: IngesterOptions = {}) {
    this.#store = store;
    this.#limits = limits;
    this.#chunkIdlePeriodMs = options.chunkIdlePeriodMs ?? DEFAULT_CHUNK_IDLE_PERIOD_MS;
    this.#rates = options.streamRates ?? new StreamRates();
    this.#sharder = new StreamSharder(this.#rates);
  }

  push(tenant: string, streams: DecodedStream[]): void {
    if (streams.length === 0) {
      throw new HttpError(422, "error at least one valid stream is required for ingestion\n");
    }
    const limits = this.#limits.get(tenant);
    const validated = this.#validate(tenant, streams, limits);
    if (validated.valid.length === 0) {
      if (validated.errors.empty) return;
      throw new HttpError(400, `${validated.errors}\n`);
    }
    if (!this.#tenantBucket(tenant, limits).allow(validated.bytes)) {
      throw new HttpError(
        429,
        `Ingestion rate limit exceeded for user ${tenant} (limit: ${Math.trunc(limits.ingestionRateMb * MiB)} bytes/sec) ` +
          `while attempting to ingest '${validated.lines}' lines totaling '${validated.bytes}' bytes, reduce log volume ` +
          "or contact your Loki administrator to see if the limit can be increased\n",
      );
    }
    if (validated.messageSize > limits.grpcServerMaxRecvMsgSize) {
      throw new HttpError(
        500,
        "rpc error: code = ResourceExhausted desc = grpc: received message larger than max " +
          `(${validated.messageSize} vs. ${limits.grpcServerMaxRecvMsgSize})\n`,
      );
    }
    const ingesterError = this.#pushToIngester(tenant, validated.valid, limits);
    if (ingesterError) throw ingesterError;
    if (!validated.errors.empty) throw new HttpError(400, `${validated.errors}\n`);
  }

  /**
   * What a restarted Loki does when it replays its WAL: every entry of the streams it still holds
   * (pushed to within `chunk_idle_period`) goes through the ingester again and counts in the
   * stream's rate for the current second, so the streams' next pushes may be sharded. Without
   * this call the server keeps the rates it had, as if it had not restarted.
   */
  replayWal(): void {
    const activeSinceMs = Date.now() - this.#chunkIdlePeriodMs;
    for (const tenant of this.#store.tenants()) {
      for (const stream of this.#store.streamsOf(tenant)) {
        if (stream.lastPushMs < activeSinceMs) continue;
        let bytes = 0;
        for (const entry of stream.entries) bytes += Buffer.byteLength(entry.line) + metadataBytes(entry);
        const unsharded = formatLabels(stream.labels.filter(([name]) => name !== SHARD_LABEL));
        this.#rates.record(tenant, unsharded, stream.key, bytes);
      }
    }
  }

  /**
   * The distributor's validation: label checks per stream, entry checks (too old, too new,
   * size...), then stream sharding of what is left, as Loki shards each stream once validated
   * (so its shard tracker moves on even for a push refused afterwards).
   */
  #validate(tenant: string, streams: DecodedStream[], limits: TenantLimits): ValidatedPush {
    const result: ValidatedPush = {
      valid: [],
      errors: new GroupedErrors(),
      bytes: 0,
      lines: 0,
      messageSize: 0,
    };
    const now = nowNs();
    const oldestAcceptable = now - msToNs(limits.rejectOldSamplesMaxAgeMs);
    const newestAcceptable = now + msToNs(limits.creationGracePeriodMs);
    for (const stream of streams) {
      if (stream.entries.length === 0) continue;
      const labels = withServiceName(stream.labels, limits.discoverServiceName);
      const labelText = formatLabels(labels);
      const labelError = this.#validateLabels(labels, labelText, limits);
      if (labelError) {
        result.errors.add(labelError);
        continue;
      }
      const accepted: DecodedEntry[] = [];
      for (const entry of stream.entries) {
        const error = validateEntry(entry, labelText, limits, oldestAcceptable, newestAcceptable);
        if (error) {
          result.errors.add(error);
          continue;
        }
        accepted.push(entry);
        const bytes = Buffer.byteLength(entry.line) + metadataBytes(entry);
        result.bytes += bytes;
        result.lines++;
        result.messageSize += bytes + ENTRY_PROTO_OVERHEAD + DETECTED_LEVEL_PROTO_SIZE;
      }
      if (accepted.length === 0) continue;
      const settings = { enabled: limits.shardStreamsEnabled, desiredRate: limits.shardStreamsDesiredRate };
      for (const outgoing of this.#sharder.shard(
        tenant,
        { labels, labelText, entries: accepted },
        settings,
      )) {
        result.valid.push(outgoing);
        result.messageSize += outgoing.labelText.length + 8;
      }
    }
    return result;
  }

  /**
   * The ingester pushes stream after stream and keeps only the last stream's error (Loki 3.4.6
   * `instance.Push` overwrites one `appendErr`): earlier streams' refusals are dropped silently.
   */
  #pushToIngester(tenant: string, streams: ValidStream[], limits: TenantLimits): HttpError | undefined {
    const activeSinceMs = Date.now() - this.#chunkIdlePeriodMs;
    let active: number | undefined;
    let lastError: HttpError | undefined;
    for (const input of streams) {
      let stream = this.#store.find(tenant, input.labelText);
      if (!stream || stream.lastPushMs < activeSinceMs) {
        active ??= this.#store.countActive(tenant, activeSinceMs);
        if (limits.maxGlobalStreamsPerUser > 0 && active >= limits.maxGlobalStreamsPerUser) {
          lastError = streamLimitError(tenant, input.labelText);
          continue;
        }
        active++;
        stream ??= this.#store.getOrCreate(tenant, input.labelText, input.labels);
      }
      lastError = this.#pushStream(tenant, stream, input, limits);
    }
    return lastError;
  }

  #validateLabels(labels: LabelPairs, labelText: string, limits: TenantLimits): string | undefined {
    const count = labels.length - 1; // service_name is not counted
    if (count > limits.maxLabelNamesPerSeries) {
      return `entry for stream '${labelText}' has ${count} label names; limit ${limits.maxLabelNamesPerSeries}`;
    }
    for (const [name, value] of labels) {
      if (name.length > limits.maxLabelNameLength) {
        return `stream '${labelText}' has label name too long: '${name}'`;
      }
      if (value.length > limits.maxLabelValueLength) {
        return `stream '${labelText}' has label value too long: '${value}'`;
      }
    }
    return undefined;
  }

  #tenantBucket(tenant: string, limits: TenantLimits): TokenBucket {
    const rate = limits.ingestionRateMb * MiB;
    const burst = limits.ingestionBurstSizeMb * MiB;
    let holder = this.#tenantBuckets.get(tenant);
    if (!holder) {
      holder = { bucket: new TokenBucket(rate, burst), version: this.#limits.version };
      this.#tenantBuckets.set(tenant, holder);
    } else if (holder.version !== this.#limits.version) {
      holder.bucket.reconfigure(rate, burst);
      holder.version = this.#limits.version;
    }
    return holder.bucket;
  }

  /**
   * The ingester's per-stream push: repeats of the last stored entry skipped, out-of-order window
   * moving with the batch, the bytes recorded in the stream's rate (refused entries included, as
   * Loki records them before its rate limit), per-stream rate limit, de-dup.
   */
  #pushStream(
    tenant: string,
    stream: Stream,
    input: ValidStream,
    limits: TenantLimits,
  ): HttpError | undefined {
    stream.lastPushMs = Date.now();
    const windowNs = msToNs(limits.outOfOrderWindowMs);
    const refused: Array<{ entry: DecodedEntry; reason: string }> = [];
    const toStore: DecodedEntry[] = [];
    let newest = stream.newestTs;
    let last = stream.lastLine;
    let validBytes = 0;
    let rateBytes = 0;
    for (const entry of input.entries) {
      if (last && entry.ts === last.ts && entry.line === last.line) continue;
      rateBytes += Buffer.byteLength(entry.line) + metadataBytes(entry);
      if (newest !== undefined && entry.ts < newest - windowNs) {
        const cutoff = newest - windowNs;
        refused.push({
          entry,
          reason:
            `entry too far behind, entry timestamp is: ${formatRfc3339(entry.ts)}, ` +
            `oldest acceptable timestamp is: ${formatRfc3339(cutoff)}`,
        });
        continue;
      }
      if (newest === undefined || entry.ts > newest) newest = entry.ts;
      validBytes += Buffer.byteLength(entry.line);
      last = entry;
      toStore.push(entry);
    }
    this.#rates.record(tenant, input.rateKey, input.labelText, rateBytes);
    if (toStore.length > 0 && !this.#streamAllows(stream, validBytes, limits)) {
      for (const entry of toStore) {
        refused.push({
          entry,
          reason:
            `Per stream rate limit exceeded (limit: ${humanBytes(limits.perStreamRateLimit)}/sec) while attempting to ` +
            `ingest for stream '${input.labelText}' totaling ${humanBytes(Buffer.byteLength(entry.line))}, consider splitting a ` +
            "stream via additional labels or contact your Loki administrator to see if the limit can be increased",
        });
      }
      return failedEntriesError(tenant, input, refused, 429);
    }
    stream.insertBatch(toStore);
    stream.lastLine = last;
    return refused.length > 0 ? failedEntriesError(tenant, input, refused, 400) : undefined;
  }

  #streamAllows(stream: Stream, bytes: number, limits: TenantLimits): boolean {
    const rate = limits.perStreamRateLimit;
    const burst = limits.perStreamRateLimitBurst;
    if (!stream.rateLimiter) stream.rateLimiter = new TokenBucket(rate, burst);
    else if (stream.rateLimiter.ratePerSecond !== rate || stream.rateLimiter.burst !== burst) {
      stream.rateLimiter.reconfigure(rate, burst);
    }
    return stream.rateLimiter.allow(bytes);
  }
}

function validateEntry(
  entry: DecodedEntry,
  labelText: string,
  limits: TenantLimits,
  oldestAcceptable: bigint,
  newestAcceptable: bigint,
): string | undefined {
  if (limits.rejectOldSamples && entry.ts < oldestAcceptable) {
    return (
      `entry for stream '${labelText}' has timestamp too old: ${formatRfc3339(entry.ts)}, ` +
      `oldest acceptable timestamp is: ${formatRfc3339(oldestAcceptable)}`
    );
  }
  if (entry.ts > newestAcceptable) {
    return `entry for stream '${labelText}' has timestamp too new: ${formatRfc3339(entry.ts)}`;
  }
  if (limits.maxLineSize > 0) {
    // Cheap check first: a UTF-16 length can only underestimate the UTF-8 byte length 3x.
    const length = entry.line.length * 3 > limits.maxLineSize ? Buffer.byteLength(entry.line) : 0;
    if (length > limits.maxLineSize) {
      return (
        `Max entry size '${limits.maxLineSize}' bytes exceeded for stream '${labelText}' ` +
        `while adding an entry with length '${length}' bytes`
      );
    }
  }
  if (entry.metadata) {
    if (entry.metadata.length > limits.maxStructuredMetadataEntriesCount) {
      return (
        `stream '${labelText}' has too many structured metadata labels: '${entry.metadata.length}', ` +
        `limit: '${limits.maxStructuredMetadataEntriesCount}'. Please see \`limits_config.max_structured_metadata_entries_count\` or contact your Loki administrator to increase it.`
      );
    }
    let size = 0;
    for (const [name, value] of entry.metadata) size += name.length + value.length;
    if (size > limits.maxStructuredMetadataSize) {
      return (
        `stream '${labelText}' has structured metadata too large: '${size}' bytes, ` +
        `limit: '${limits.maxStructuredMetadataSize}' bytes. Please see \`limits_config.max_structured_metadata_size\` or contact your Loki administrator to increase it.`
      );
    }
  }
  return undefined;
}

function streamLimitError(tenant: string, labelText: string): HttpError {
  return new HttpError(
    429,
    `Maximum active stream limit exceeded when trying to create stream ${labelText}, reduce the number ` +
      "of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if " +
      `the limit can be increased, user: '${tenant}'\n`,
  );
}

/** Loki's ingester `errorForFailedEntries`: up to 10 refused entries, then a summary line. */
function failedEntriesError(
  tenant: string,
  stream: ValidStream,
  refused: Array<{ entry: DecodedEntry; reason: string }>,
  status: number,
): HttpError {
  let body = "";
  for (const { entry, reason } of refused.slice(0, MAX_RETURNED_ERRORS)) {
    body += `entry with timestamp ${formatGoTime(entry.ts)} ignored, reason: '${reason}',\n`;
  }
  body += `user '${tenant}', total ignored: ${refused.length} out of ${stream.entries.length} for stream: ${stream.labelText}\n`;
  return new HttpError(status, body);
}
