import type { LabelPairs } from "./labels.ts";

/** One log entry as stored: ns timestamp, line, and the structured metadata sent with it. */
export interface StoredEntry {
  ts: bigint;
  line: string;
  metadata: LabelPairs | undefined;
}

/**
 * One stream: labels (incl. service_name) and its entries sorted by time; entries with the same
 * timestamp stay in push order, which is the order Loki returns them in (reversed for backward).
 */
export class Stream {
  readonly labels: LabelPairs;
  readonly key: string;
  entries: StoredEntry[] = [];
  /** Newest timestamp ever accepted (the out-of-order window is relative to it). */
  newestTs: bigint | undefined;
  /** Loki keeps a per-stream rate limiter in the ingester. */
  rateTokens = Number.NaN;
  rateUpdatedMs = 0;
  /** Wall-clock time of the last push that stored or refused entries here (stream activity). */
  lastPushMs = 0;

  constructor(key: string, labels: LabelPairs) {
    this.key = key;
    this.labels = labels;
  }

  /**
   * Adds a batch of entries in push order, skipping those identical (same ns timestamp and line)
   * to a stored one or to an earlier one of the batch: the de-duplication Loki applies. Entries
   * newer than everything stored are appended; otherwise the batch is merged in one pass, so
   * out-of-order pushes cost O(stream + batch), not a shift per entry.
   */
  insertBatch(batch: readonly StoredEntry[]): void {
    if (batch.length === 0) return;
    let sorted = true;
    for (let i = 1; i < batch.length; i++) {
      if ((batch[i] as StoredEntry).ts < (batch[i - 1] as StoredEntry).ts) {
        sorted = false;
        break;
      }
    }
    // Array.prototype.sort is stable: equal timestamps keep their push order.
    const ordered = sorted ? batch : [...batch].sort((a, b) => (a.ts === b.ts ? 0 : a.ts < b.ts ? -1 : 1));
    const entries = this.entries;
    const first = ordered[0] as StoredEntry;
    if (entries.length === 0 || (entries[entries.length - 1] as StoredEntry).ts <= first.ts) {
      for (const entry of ordered) appendUnlessDuplicate(entries, entry);
    } else {
      const merged: StoredEntry[] = [];
      let k = 0;
      for (const entry of ordered) {
        // Stored entries with the same timestamp come first: they were pushed earlier.
        while (k < entries.length && (entries[k] as StoredEntry).ts <= entry.ts)
          merged.push(entries[k++] as StoredEntry);
        appendUnlessDuplicate(merged, entry);
      }
      while (k < entries.length) merged.push(entries[k++] as StoredEntry);
      this.entries = merged;
    }
    const newest = (this.entries[this.entries.length - 1] as StoredEntry).ts;
    if (this.newestTs === undefined || newest > this.newestTs) this.newestTs = newest;
  }
}

function appendUnlessDuplicate(entries: StoredEntry[], entry: StoredEntry): void {
  for (let i = entries.length - 1; i >= 0; i--) {
    const other = entries[i] as StoredEntry;
    if (other.ts !== entry.ts) break;
    if (other.line === entry.line) return;
  }
  entries.push(entry);
}

/** First index whose timestamp is > ts. */
export function upperBound(entries: readonly StoredEntry[], ts: bigint): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((entries[middle] as StoredEntry).ts <= ts) low = middle + 1;
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
