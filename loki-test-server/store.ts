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
  readonly entries: StoredEntry[] = [];
  /** Newest timestamp ever accepted (the out-of-order window is relative to it). */
  newestTs: bigint | undefined;
  /** Loki keeps a per-stream rate limiter in the ingester. */
  rateTokens = Number.NaN;
  rateUpdatedMs = 0;

  constructor(key: string, labels: LabelPairs) {
    this.key = key;
    this.labels = labels;
  }

  /**
   * Inserts an entry unless an identical one (same ns timestamp and line) is stored already, the
   * de-duplication Loki applies. Returns false for a duplicate.
   */
  insert(entry: StoredEntry): boolean {
    const entries = this.entries;
    let position = entries.length;
    // Common case: appending in time order, only the tail needs a look.
    if (position > 0 && (entries[position - 1] as StoredEntry).ts > entry.ts) {
      position = upperBound(entries, entry.ts);
    }
    for (let i = position - 1; i >= 0; i--) {
      const other = entries[i] as StoredEntry;
      if (other.ts !== entry.ts) break;
      if (other.line === entry.line) return false;
    }
    if (position === entries.length) entries.push(entry);
    else entries.splice(position, 0, entry);
    if (this.newestTs === undefined || entry.ts > this.newestTs) this.newestTs = entry.ts;
    return true;
  }
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
