import { CopyObjectCommand } from "@aws-sdk/client-s3";
import type { Pacer } from "../delivery/pacing.ts";
import { timeShard } from "../delivery/timestamps.ts";
import type { LogEvent } from "../log-event.ts";
import type { ChunkHeader, ChunkRecord } from "../storage/chunk-format.ts";
import {
  deleteKeys,
  getChunk,
  getJson,
  listKeys,
  putJson,
  runKeys,
  type Store,
} from "../storage/run-store.ts";
import type { ReplayUnit } from "./slice-export.ts";

/** The part of `deliverEvents`' report the replay counts (functions/core/delivery/deliver.ts). */
export interface DeliveryCounts {
  received: number;
  pushed: number;
  refused: Record<string, number>;
  spilled: number;
  retries: number;
  bytes: number;
  requests: number;
  /** Keys of the spill/ and rejected/ chunks the delivery wrote for what Loki did not take. */
  chunkKeys?: string[];
}

/** Delivers one group's events; bound to `deliverEvents` by the caller (handler or local runner). */
export type DeliverBatch = (
  batch: {
    logGroup: string;
    labels: Record<string, string>;
    events: LogEvent[];
    /** The chunk's own per-entry label choices, when it recorded them. */
    eventLabels?: ChunkHeader["eventLabels"];
  },
  deadline: number,
) => Promise<DeliveryCounts>;

/** Saved after every chunk: a killed replay resumes after the last chunk it finished. */
export interface ReplayCheckpoint {
  unitId: string;
  source: ReplayUnit["source"];
  prefix: string;
  logGroup: string;
  /** The last chunk key fully handed to Loki (chunks are replayed in key order). */
  lastKey?: string;
  chunks: number;
  received: number;
  pushed: number;
  refused: Record<string, number>;
  spilled: number;
  retries: number;
  requests: number;
  bytes: number;
  /** Source chunks (spill/, rejected/) deleted or archived after their replay. */
  removed: number;
  /** Source chunks kept because none of their events reached Loki this time. */
  kept: number;
  invocations: number;
  done: boolean;
  /** Set when the replay stopped early because Loki did not take anything. */
  stoppedBecause?: string;
  startedAt: string;
  updatedAt: string;
  replayMs: number;
}

export interface ReplayOptions {
  /** Copy replayed spill/rejected chunks to `archive/<key>` before deleting them. */
  archive: boolean;
  /** Events per delivery call: the pacing granularity. */
  maxEventsPerDelivery: number;
}

export const DEFAULT_REPLAY_OPTIONS: ReplayOptions = { archive: false, maxEventsPerDelivery: 5000 };

export interface ReplayDeps {
  store: Store;
  deliver: DeliverBatch;
  pacer: Pacer;
  /** Epoch ms: no new chunk is started after it (the Lambda's remaining time minus a margin). */
  deadline: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onPushed?: (count: number) => void;
}

export interface ReplayResult {
  status: "continue" | "done";
  unitId: string;
  pushed: number;
  stoppedBecause?: string;
}

/**
 * Replays the chunks under one unit's prefix into Loki, in key order (which is time order: backfill
 * sequence numbers, spill/rejected first timestamps), each chunk's events sorted by timestamp.
 *
 * Idempotent: every event keeps its deterministic nanosecond timestamp and its `time_shard`
 * stream, so a chunk pushed again after a crash (between push and checkpoint) is stored once by
 * Loki's identical-entry de-duplication.
 */
export async function replayUnit(
  runId: string,
  unit: ReplayUnit,
  options: ReplayOptions,
  deps: ReplayDeps,
): Promise<ReplayResult> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
  const checkpointKey = runKeys.replayCheckpoint(runId, unit.unitId);
  const started = now();
  const checkpoint: ReplayCheckpoint = (await getJson<ReplayCheckpoint>(deps.store, checkpointKey)) ?? {
    unitId: unit.unitId,
    source: unit.source,
    prefix: unit.prefix,
    logGroup: unit.logGroup,
    chunks: 0,
    received: 0,
    pushed: 0,
    refused: {},
    spilled: 0,
    retries: 0,
    requests: 0,
    bytes: 0,
    removed: 0,
    kept: 0,
    invocations: 0,
    done: false,
    startedAt: new Date(started).toISOString(),
    updatedAt: new Date(started).toISOString(),
    replayMs: 0,
  };
  if (checkpoint.done) return { status: "done", unitId: unit.unitId, pushed: checkpoint.pushed };
  checkpoint.invocations += 1;
  delete checkpoint.stoppedBecause;
  const removesSource = unit.source === "spill" || unit.source === "rejected";
  const keys = (await listKeys(deps.store, unit.prefix, checkpoint.lastKey)).filter((key) =>
    key.endsWith(".ndjson.gz"),
  );
  let lastTick = started;
  let finished = true;
  let failuresInARow = 0;
  for (const key of keys) {
    if (now() >= deps.deadline) {
      finished = false;
      break;
    }
    const found = await getChunk(deps.store, key);
    if (!found) {
      checkpoint.lastKey = key;
      continue;
    }
    const { chunk } = found;
    const counts = emptyCounts();
    const rewritten = new Set<string>();
    for (const events of inPieces(chunk.records, options.maxEventsPerDelivery)) {
      await deps.pacer.take(bytesByStream(chunk.header.labels, events));
      const delivered = await deps.deliver(
        {
          logGroup: chunk.header.logGroup,
          labels: chunk.header.labels,
          events,
          ...(chunk.header.eventLabels ? { eventLabels: chunk.header.eventLabels } : {}),
        },
        deps.deadline,
      );
      addCounts(counts, delivered);
      for (const written of delivered.chunkKeys ?? []) rewritten.add(written);
      deps.onPushed?.(delivered.pushed);
    }
    addCounts(checkpoint, counts);
    checkpoint.chunks += 1;
    if (removesSource) {
      // deliverEvents keeps what Loki did not take under spill/ or rejected/ again, under a key made
      // from the content: when nothing was taken that copy can be this very key, which must stay.
      if (rewritten.has(key)) checkpoint.kept += 1;
      else {
        if (options.archive) {
          await deps.store.s3.send(
            new CopyObjectCommand({
              Bucket: deps.store.bucket,
              CopySource: `${deps.store.bucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}`,
              Key: `archive/${key}`,
            }),
          );
        }
        await deleteKeys(deps.store, [key]);
        checkpoint.removed += 1;
      }
    }
    checkpoint.lastKey = key;
    const tick = now();
    checkpoint.replayMs += tick - lastTick;
    lastTick = tick;
    checkpoint.updatedAt = new Date(tick).toISOString();
    await putJson(deps.store, checkpointKey, checkpoint);

    // Loki kept refusing or could not be reached: what was sent went to spill/, so stop here
    // rather than move every remaining chunk from one S3 key to another.
    const unreachable = counts.spilled > 0 && counts.pushed === 0;
    failuresInARow = unreachable ? failuresInARow + 1 : 0;
    if (unreachable && failuresInARow >= 2) {
      checkpoint.stoppedBecause = `Loki took none of the last ${failuresInARow} chunks (${counts.spilled} events kept in spill/)`;
      finished = true;
      break;
    }
    if (unreachable) await sleep(Math.min(30_000, 1000 * 2 ** failuresInARow));
  }
  checkpoint.done = finished;
  checkpoint.updatedAt = new Date(now()).toISOString();
  await putJson(deps.store, checkpointKey, checkpoint);
  return {
    status: finished ? "done" : "continue",
    unitId: unit.unitId,
    pushed: checkpoint.pushed,
    ...(checkpoint.stoppedBecause ? { stoppedBecause: checkpoint.stoppedBecause } : {}),
  };
}

function emptyCounts(): DeliveryCounts {
  return { received: 0, pushed: 0, refused: {}, spilled: 0, retries: 0, bytes: 0, requests: 0 };
}

function addCounts(into: DeliveryCounts, add: DeliveryCounts): void {
  into.received += add.received;
  into.pushed += add.pushed;
  into.spilled += add.spilled;
  into.retries += add.retries;
  into.bytes += add.bytes;
  into.requests += add.requests;
  for (const [reason, count] of Object.entries(add.refused))
    into.refused[reason] = (into.refused[reason] ?? 0) + count;
}

function* inPieces(records: ChunkRecord[], size: number): Generator<LogEvent[]> {
  for (let start = 0; start < records.length; start += size) {
    yield records.slice(start, start + size).map(({ id, timestamp, message, logStream }) => ({
      id,
      timestamp,
      message,
      logStream,
    }));
  }
}

/** Line bytes per Loki stream (group labels + hour shard), as Loki's rate limiters count them. */
function bytesByStream(labels: Record<string, string>, events: LogEvent[]): Map<string, number> {
  const prefix = JSON.stringify(labels);
  const bytes = new Map<string, number>();
  for (const event of events) {
    const stream = `${prefix}|${timeShard(event.timestamp)}`;
    bytes.set(stream, (bytes.get(stream) ?? 0) + Buffer.byteLength(event.message));
  }
  return bytes;
}
