import type { LabelPairs } from "./labels.ts";
import type { TokenBucket } from "./rate-limiter.ts";

/** One log entry as stored: ns timestamp, line, and the structured metadata sent with it. */
export interface StoredEntry {
  ts: bigint;
  line: string;
  metadata: LabelPairs | undefined;
}

function byTime(a: StoredEntry, b: StoredEntry): number {
  return a.ts === b.ts ? 0 : a.ts < b.ts ? -1 : 1;
}

/**
 * One stream: labels (incl. service_name) and its entries by time; entries with the same
 * timestamp keep their push order, which is the order Loki returns them in (reversed for
 * backward). In-order entries are appended to a sorted array; out-of-order ones wait in a pending
 * list that is merged by a stable sort when the stream is next read, so neither kind of push pays
 * for shifting stored entries.
 */
export class Stream {
  readonly labels: LabelPairs;
  readonly key: string;
  /** Newest timestamp ever accepted (the out-of-order window is relative to it). */
  newestTs: bigint | undefined;
  /** Loki keeps a per-stream rate limiter in the ingester. */
  rateLimiter: TokenBucket | undefined;
  /** Wall-clock time of the last push that stored or refused entries here (stream activity). */
  lastPushMs = 0;
  /**
   * The entry stored last, in push order (Loki's `stream.lastLine`): a push repeating it is
   * skipped before any check and not counted in the stream's rate.
   */
  lastLine: { ts: bigint; line: string } | undefined;
  #sorted: StoredEntry[] = [];
  #pending: StoredEntry[] = [];
  /** Lines of the pending entries by timestamp, for de-duplication. */
  #pendingLines = new Map<bigint, string[]>();

  constructor(key: string, labels: LabelPairs) {
    this.key = key;
    this.labels = labels;
  }

  /** All entries sorted by time (equal timestamps in push order). */
  get entries(): readonly StoredEntry[] {
    if (this.#pending.length > 0) {
      // Concatenation keeps push order for equal timestamps; the sort is stable (TimSort, fast on runs).
      this.#sorted = this.#sorted.concat(this.#pending).sort(byTime);
      this.#pending = [];
      this.#pendingLines.clear();
    }
    return this.#sorted;
  }

  /**
   * Adds entries in push order, skipping those identical (same ns timestamp and line) to a stored
   * one or to an earlier one of the batch: the de-duplication Loki applies.
   */
  insertBatch(batch: readonly StoredEntry[]): void {
    const sorted = this.#sorted;
    for (const entry of batch) {
      const last = sorted[sorted.length - 1];
      if (last === undefined || entry.ts >= last.ts) {
        if (!hasLine(sorted, sorted.length - 1, entry)) sorted.push(entry);
      } else if (!hasLine(sorted, upperBound(sorted, entry.ts) - 1, entry)) {
        const lines = this.#pendingLines.get(entry.ts);
        if (lines?.includes(entry.line)) continue;
        if (lines) lines.push(entry.line);
        else this.#pendingLines.set(entry.ts, [entry.line]);
        this.#pending.push(entry);
      }
      if (this.newestTs === undefined || entry.ts > this.newestTs) this.newestTs = entry.ts;
    }
  }
}

/** Whether entries[..from] holds, among the entries with the same timestamp, the same line. */
function hasLine(entries: readonly StoredEntry[], from: number, entry: StoredEntry): boolean {
  for (let i = from; i >= 0; i--) {
    const other = entries[i] as StoredEntry;
    if (other.ts !== entry.ts) return false;
    if (other.line === entry.line) return true;
  }
  return false;
}

/** First index whose timestamp is > ts (entries, or any items sorted by `ts`). */
export function upperBound(entries: readonly { ts: bigint }[], ts: bigint): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((entries[middle] as { ts: bigint }).ts <= ts) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** First index whose timestamp is >= ts. */
export function lowerBound(entries: readonly StoredEntry[], ts: bigint): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((entries[middle] as StoredEntry).ts < ts) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** All streams of all tenants, in memory. */
export class LogStore {
  readonly #tenants = new Map<string, Map<string, Stream>>();

  tenants(): Iterable<string> {
    return this.#tenants.keys();
  }

  streamsOf(tenant: string): Iterable<Stream> {
    return this.#tenants.get(tenant)?.values() ?? [];
  }

  find(tenant: string, key: string): Stream | undefined {
    return this.#tenants.get(tenant)?.get(key);
  }

  /** Streams of the tenant pushed to since `sinceMs` (Loki's "active" streams held by ingesters). */
  countActive(tenant: string, sinceMs: number): number {
    let count = 0;
    for (const stream of this.streamsOf(tenant)) if (stream.lastPushMs >= sinceMs) count++;
    return count;
  }

  getOrCreate(tenant: string, key: string, labels: LabelPairs): Stream {
    let streams = this.#tenants.get(tenant);
    if (!streams) {
      streams = new Map();
      this.#tenants.set(tenant, streams);
    }
    let stream = streams.get(key);
    if (!stream) {
      stream = new Stream(key, labels);
      streams.set(key, stream);
    }
    return stream;
  }
}
