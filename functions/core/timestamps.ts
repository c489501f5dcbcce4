import { createHash } from "node:crypto";

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

/** A stable value in [0, 1e6) from the event id (SHA-256: the same on every machine and version). */
export function eventIdOffset(eventId: string): bigint {
  const digest = createHash("sha256").update(eventId).digest();
  return digest.readBigUInt64BE(0) % NANOS_PER_MS;
}

/**
 * The `time_shard` label value: the UTC hour of the entry, e.g. "2026-11-25T14". Every entry of a
 * stream is then within 1 h of every other, so Loki's out-of-order window (refuse iff older than
 * the stream's newest entry − 1 h) can never refuse one, whatever the push order.
 */
export function timeShard(timestampMs: number): string {
  return new Date(timestampMs).toISOString().slice(0, 13);
}

/** Milliseconds of a nanosecond timestamp (floor). */
export function nanosToMillis(ns: bigint): number {
  return Number(ns / NANOS_PER_MS);
}
