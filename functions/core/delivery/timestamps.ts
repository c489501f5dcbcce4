const NANOS_PER_MS = 1_000_000n;

/**
 * The nanosecond timestamp of a CloudWatch event in Loki: its millisecond plus a stable offset
 * derived from the event id. Loki stores an entry identical in stream, nanosecond timestamp and
 * line once, so the same event pushed twice (retry, replay, backfill) is one entry, while two
 * distinct events with the same millisecond and text (two log streams) get different timestamps
 * and are both kept. The offset stays below 1 ms, so the entry keeps its millisecond and hour.
 */
export function eventNanoseconds(timestampMs: number, eventId: string): bigint {
  return BigInt(timestampMs) * NANOS_PER_MS + eventIdOffset(eventId);
}

/**
 * A stable value in [0, 1e6) from the event id: FNV-1a (32 bit) over its characters, the same on
 * every machine and version. Not cryptographic, and needs not be: it only spreads the events of one
 * millisecond over its nanoseconds, at a fraction of a digest's cost per event.
 */
export function eventIdOffset(eventId: string): bigint {
  let hash = 0x811c9dc5;
  for (let index = 0; index < eventId.length; index++) {
    hash ^= eventId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return BigInt((hash >>> 0) % 1_000_000);
}

/**
 * The `time_shard` label value: the UTC hour of the entry, e.g. "2026-11-25T14". Every entry of a
 * stream is then within 1 h of every other, so Loki's out-of-order window (refuse iff older than
 * the stream's newest entry − 1 h) can never refuse one, whatever the push order.
 */
export function timeShard(timestampMs: number): string {
  const hour = Math.floor(timestampMs / HOUR_MS);
  if (hour !== lastShard.hour)
    lastShard = { hour, label: new Date(hour * HOUR_MS).toISOString().slice(0, 13) };
  return lastShard.label;
}

const HOUR_MS = 3_600_000;
// Events of a batch share their hour: formatting a date per event was a hot spot of the shipper.
let lastShard = { hour: Number.NaN, label: "" };

/** Milliseconds of a nanosecond timestamp (floor). */
export function nanosToMillis(ns: bigint): number {
  return Number(ns / NANOS_PER_MS);
}
