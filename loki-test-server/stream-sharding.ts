import { formatLabels, type LabelPairs } from "./labels.ts";
import type { StreamRate, StreamRates } from "./stream-rates.ts";

/**
 * Stream sharding as Loki 3.4's distributor does it (`limits_config.shard_streams`, on by default):
 * a stream whose rate plus this push would exceed `desired_rate` is split into shards, streams of
 * their own with the label `__stream_shard__="<n>"`, and the push's entries are dealt out to them.
 * Loki de-duplicates identical entries within one stream only, so an entry pushed again can land in
 * another shard and be stored twice.
 */

/** `ingester.ShardLbName`: visible in query results, `/series` and `/labels` like any label. */
export const SHARD_LABEL = "__stream_shard__";

/** A tenant's `shard_streams` settings. */
export interface ShardSettings {
  /** `shard_streams.enabled` (default true). */
  enabled: boolean;
  /** `shard_streams.desired_rate`, bytes per second (default 1536KB). */
  desiredRate: number;
}

/**
 * `shardCountFor` and `calculateShards`: ceil((rate + pushSize × min(pushes, 1)) / desiredRate),
 * and 1 while that is at most 1, while the rate store does not know the stream (a stream's first
 * push is never sharded) or when desired_rate is not positive. `pushSize` is the bytes of the
 * push's lines (structured metadata not counted).
 */
export function shardCount(rate: StreamRate, pushSize: number, desiredRate: number): number {
  if (desiredRate <= 0 || rate.pushes === 0) return 1;
  const pushRate = Math.min(rate.pushes, 1);
  const shards = (rate.bytesPerSecond + Math.trunc(pushSize * pushRate)) / desiredRate;
  return shards <= 1 ? 1 : Math.ceil(shards);
}

/**
 * `divideEntriesBetweenShards` and `createShards`: entry i goes to the (i mod n)-th shard made, the
 * shards made being numbered from `startShard` on (mod `totalShards`), n = min(entries,
 * totalShards): fewer entries than shards use only that many.
 */
export function dealEntries<E>(
  entries: readonly E[],
  totalShards: number,
  startShard: number,
): Array<{ shard: number; entries: E[] }> {
  const made = Math.min(entries.length, totalShards);
  const shards = Array.from({ length: made }, (_, i) => ({
    shard: (startShard + i) % totalShards,
    entries: [] as E[],
  }));
  entries.forEach((entry, i) => {
    (shards[i % made] as { entries: E[] }).entries.push(entry);
  });
  return shards;
}

/** The labels with `__stream_shard__` added, sorted by name as Loki sorts them. */
export function withShardLabel(labels: LabelPairs, shard: number): LabelPairs {
  const pairs: LabelPairs = [
    ...labels.filter(([name]) => name !== SHARD_LABEL),
    [SHARD_LABEL, String(shard)],
  ];
  return pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** A stream on its way to the ingester. */
export interface OutgoingStream<E> {
  labels: LabelPairs;
  labelText: string;
  entries: E[];
  /** The labels of the stream as pushed, without a shard label: its rates are kept under them. */
  rateKey: string;
}

/**
 * The distributor's `shardStream`, with its `ShardTracker`: where the next push of a stream starts
 * dealing (the shard after the last one used). Loki's tracker is per tenant and stripe of the
 * stream hash (1,024 stripes), so two streams of a tenant rarely share one; here each stream has its own.
 */
export class StreamSharder {
  readonly #rates: StreamRates;
  readonly #lastShard = new Map<string, number>();

  constructor(rates: StreamRates) {
    this.#rates = rates;
  }

  /** The streams a validated stream reaches the ingester as: itself, or its shards. */
  shard<E extends { line: string }>(
    tenant: string,
    stream: { labels: LabelPairs; labelText: string; entries: E[] },
    settings: ShardSettings,
  ): Array<OutgoingStream<E>> {
    const unsharded = [{ ...stream, rateKey: stream.labelText }];
    if (!settings.enabled) return unsharded;
    let pushSize = 0;
    for (const entry of stream.entries) pushSize += Buffer.byteLength(entry.line);
    const rate = this.#rates.rateFor(tenant, stream.labelText);
    const total = shardCount(rate, pushSize, settings.desiredRate);
    if (total <= 1) return unsharded;
    const trackerKey = `${tenant}\u0000${stream.labelText}`;
    const start = this.#lastShard.get(trackerKey) ?? 0;
    const shards = dealEntries(stream.entries, total, start);
    this.#lastShard.set(trackerKey, start + shards.length);
    return shards.map(({ shard, entries }) => {
      const labels = withShardLabel(stream.labels, shard);
      return { labels, labelText: formatLabels(labels), entries, rateKey: stream.labelText };
    });
  }
}
