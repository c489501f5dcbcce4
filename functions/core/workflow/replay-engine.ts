import { CopyObjectCommand } from "@aws-sdk/client-s3";
import { streamKeysOf } from "../delivery/batching.ts";
import {
  addDeliveryCounts,
  type DeliveryCounts,
  type DeliveryReport,
  emptyDeliveryCounts,
} from "../delivery/deliver.ts";
import type { Pacer } from "../delivery/pacing.ts";
import { STREAM_LIMIT_REFUSAL } from "../delivery/push-session.ts";
import { type StreamBudget, tenantStreamKeys } from "../delivery/stream-budget.ts";
import { timeShard } from "../delivery/timestamps.ts";
import type { EventLabelOptions } from "../labels/labels.ts";
import type { LogEvent } from "../log-event.ts";
import type { Chunk, ChunkHeader, ChunkRecord, GroupRef } from "../storage/chunk-format.ts";
import {
  deleteKeys,
  getChunk,
  getJson,
  listKeys,
  putJson,
  runKeys,
  type Store,
} from "../storage/run-store.ts";
import { groupRefOf, type ReplayUnit } from "./slice-export.ts";

/** Delivers one group's events; bound to `deliverEvents` by the caller (handler or local runner). */
export type DeliverBatch = (
  batch: {
    logGroup: string;
    labels: Record<string, string>;
    /** The chunk's own tenant (its group's tenant tag); absent: the default tenant. */
    tenant?: string;
    events: LogEvent[];
    /** The chunk's own per-entry label choices, when it recorded them. */
    eventLabels?: ChunkHeader["eventLabels"];
  },
  deadline: number,
) => Promise<DeliveryReport>;

/** Saved after every chunk: a killed replay resumes after the last chunk it finished. */
export interface ReplayCheckpoint extends DeliveryCounts, GroupRef {
  unitId: string;
  source: ReplayUnit["source"];
  prefix: string;
  /** The tenant of the unit's chunks (their group's tenant tag); absent: the default tenant. */
  tenant?: string;
  /** The last chunk key fully handed to Loki (chunks are replayed in key order). */
  lastKey?: string;
  chunks: number;
  /** Chunks that waited for room in the stream budget, and how long in all. */
  streamWaits: number;
  streamWaitMs: number;
  /** Events of spill/ chunks refused for the stream limit, left for a drain after `heldUntil`. */
  held: number;
  heldUntil?: string;
  /** Source chunks (spill/, rejected/) deleted or archived after their replay. */
  removed: number;
  /** Source chunks kept because none of their events reached Loki this time. */
  kept: number;
  invocations: number;
  /** Every chunk handled: false while chunks of a stopped tenant (`tenantsLeft`) wait. */
  done: boolean;
  /** Why tenants' chunks were left (see `tenantsLeft`), for the report. */
  stoppedBecause?: string;
  /**
   * Tenants ("" for the default one) whose chunks this unit stopped pushing after Loki took none
   * of two of them in a row. A later invocation (the run started again with the same runId)
   * replays their chunks after `after` (the last one handled; absent: from the first).
   */
  tenantsLeft?: Record<string, TenantLeft>;
  startedAt: string;
  updatedAt: string;
  replayMs: number;
}

/** A tenant whose chunks a unit stopped pushing: where its chunks resume, and why. */
export interface TenantLeft {
  after?: string;
  reason: string;
}

export interface ReplayOptions {
  /** Copy replayed spill/rejected chunks to `archive/<key>` before deleting them. */
  archive: boolean;
  /** Events per delivery call: the pacing granularity. */
  maxEventsPerDelivery: number;
}

export const DEFAULT_REPLAY_OPTIONS: ReplayOptions = { archive: false, maxEventsPerDelivery: 5000 };

/**
 * Where a replay invocation takes its chunk keys from: in key order, after the checkpoint's last
 * key. By default it lists the unit's prefix once ({@link listedChunks}); a backfill slice's
 * export hands its chunks on while it is still reading (workflow/final-chunks.ts).
 */
export interface ChunkSource {
  keys(after: string | undefined): AsyncIterable<string>;
  /**
   * Whether the keys were all of the unit's chunks (read once they have ended): when false, more
   * may come later and the unit is not done.
   */
  readonly complete: boolean;
  /** The content of a key's chunk when the source holds it in memory (else it is read from S3). */
  take?(key: string): Chunk | undefined;
}

/** Every chunk under the unit's prefix, listed once. */
export function listedChunks(store: Store, prefix: string): ChunkSource {
  return {
    complete: true,
    async *keys(after) {
      for (const key of await listKeys(store, prefix, after)) if (key.endsWith(".ndjson.gz")) yield key;
    },
  };
}

export interface ReplayDeps {
  store: Store;
  /** Default: {@link listedChunks} of the unit's prefix. */
  source?: ChunkSource;
  deliver: DeliverBatch;
  pacer: Pacer;
  /** Epoch ms: no new chunk is started after it (the Lambda's remaining time minus a margin). */
  deadline: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onPushed?: (count: number) => void;
  /**
   * The run's stream budget: a chunk's new hour streams are opened only when it has room (the
   * streams' labels need the per-entry label choices the delivery applies).
   */
  streams?: { budget: StreamBudget; eventLabels: EventLabelOptions };
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
  // Over a fresh checkpoint, so that one saved by an earlier version gets the newer counters.
  const checkpoint: ReplayCheckpoint = {
    ...newCheckpoint(unit, started),
    ...(await getJson<ReplayCheckpoint>(deps.store, checkpointKey)),
  };
  if (checkpoint.done) return { status: "done", unitId: unit.unitId, pushed: checkpoint.pushed };
  checkpoint.invocations += 1;
  const source = deps.source ?? listedChunks(deps.store, unit.prefix);
  const stops = new TenantStops(checkpoint);
  let lastTick = started;
  let finished = true;
  for await (const key of source.keys(stops.resumeAfter())) {
    if (now() >= deps.deadline) {
      finished = false;
      break;
    }
    const step = await replayKeyInto(checkpoint, key, { unit, options, deps, now }, stops);
    if (step === "no-room") {
      // The stream budget had no room before the deadline: the next invocation starts here.
      finished = false;
      break;
    }
    if (step === "skipped") continue;
    const tick = now();
    checkpoint.replayMs += tick - lastTick;
    lastTick = tick;
    checkpoint.updatedAt = new Date(tick).toISOString();
    await putJson(deps.store, checkpointKey, checkpoint);
    if (step.failuresInARow > 0) await sleep(Math.min(30_000, 1000 * 2 ** step.failuresInARow));
  }
  if (finished) stops.scanned();
  // A stopped tenant's chunks wait for the run to be started again: the unit is not done before.
  checkpoint.done = finished && source.complete && !checkpoint.tenantsLeft;
  checkpoint.updatedAt = new Date(now()).toISOString();
  await putJson(deps.store, checkpointKey, checkpoint);
  return {
    // "done" for this execution also when tenants were left: looping at once would find Loki
    // refusing them again; the report says "incomplete", and the same runId takes them up.
    status: finished ? "done" : "continue",
    unitId: unit.unitId,
    pushed: checkpoint.pushed,
    ...(checkpoint.stoppedBecause ? { stoppedBecause: checkpoint.stoppedBecause } : {}),
  };
}

/** What became of one key: replayed (or held) with its tenant's failures in a row, skipped, or no room. */
type KeyStep = { failuresInARow: number } | "skipped" | "no-room";

/**
 * Replays the chunk at `key` (or holds it for the stream limit) into the checkpoint, unless its
 * tenant's chunks are left (stopped in this invocation) or it was handled by an earlier one.
 */
async function replayKeyInto(
  checkpoint: ReplayCheckpoint,
  key: string,
  replay: { unit: ReplayUnit; options: ReplayOptions; deps: ReplayDeps; now: () => number },
  stops: TenantStops,
): Promise<KeyStep> {
  const { unit, options, deps, now } = replay;
  const held = deps.source?.take?.(key);
  const found = held ? { chunk: held } : await getChunk(deps.store, key);
  const tenant = found?.chunk.header.tenant ?? "";
  if (!found || !stops.wants(key, tenant)) return "skipped";
  if (found.chunk.header.tenant) checkpoint.tenant = found.chunk.header.tenant;
  if (isHeldForStreamLimit(unit, found.chunk.header, deps, now())) {
    holdChunk(checkpoint, found.chunk, deps);
    // Not an answer of Loki's: the tenant's failures in a row stay as they are.
    stops.passed(key, tenant);
    return { failuresInARow: 0 };
  }
  const counts = await replayChunk(key, found.chunk, unit, options, deps);
  if (!counts) return "no-room";
  addChunkOutcome(checkpoint, counts);
  // Loki kept refusing or could not be reached: what was sent went to spill/. (A stream-limit
  // refusal concerns new streams only: the next chunk may well go to an open one.)
  const unreachable = counts.spilled > counts.streamLimited && counts.pushed === 0;
  return { failuresInARow: stops.pushed(key, tenant, unreachable ? counts.spilled : undefined) };
}

/** Chunks in a row of one tenant Loki took none of, after which its further chunks are left. */
const STOP_AFTER_FAILURES = 2;

/**
 * The stop rule, per tenant: after two chunks of a tenant that Loki took none of, the unit stops
 * pushing that tenant's chunks rather than move every one of them from one S3 key to another, and
 * goes on with the other tenants' (Loki's limits, credentials and refusals are per tenant). The
 * stopped tenants are kept in the checkpoint, with the last chunk handled, so that a later
 * invocation of the same run goes back for their chunks: the keys up to the checkpoint's
 * `lastKey` of every other tenant were handled already and are skipped.
 */
class TenantStops {
  readonly #checkpoint: ReplayCheckpoint;
  /** Tenants left by an earlier invocation, replayed again up to its `lastKey`. */
  readonly #retrying: Set<string>;
  /** Tenants stopped in this invocation: their further chunks are not pushed. */
  readonly #stopped = new Set<string>();
  readonly #failuresInARow = new Map<string, number>();

  constructor(checkpoint: ReplayCheckpoint) {
    this.#checkpoint = checkpoint;
    this.#retrying = new Set(Object.keys(checkpoint.tenantsLeft ?? {}));
    // A checkpoint that left no tenant keeps no reason (one of an earlier version may).
    this.#summarize();
  }

  /** Where this invocation's keys start: the earliest chunk a stopped tenant left, or `lastKey`. */
  resumeAfter(): string | undefined {
    const afters = [
      this.#checkpoint.lastKey,
      ...Object.values(this.#checkpoint.tenantsLeft ?? {}).map((left) => left.after),
    ];
    if (afters.some((after) => after === undefined)) return undefined;
    return (afters as string[]).sort()[0];
  }

  /** Whether the chunk at `key` of `tenant` is to be replayed now (keys come in order). */
  wants(key: string, tenant: string): boolean {
    const { lastKey } = this.#checkpoint;
    if (lastKey !== undefined && key <= lastKey) {
      // Handled by an earlier invocation unless its tenant was left then.
      return (
        this.#retrying.has(tenant) && !this.#stopped.has(tenant) && key > (this.#leftAfter(tenant) ?? "")
      );
    }
    this.scanned();
    if (!this.#stopped.has(tenant)) return true;
    this.#checkpoint.lastKey = key;
    return false;
  }

  /**
   * Records a chunk of `tenant` pushed: `spilled` is set when Loki took none of its events.
   * Returns the tenant's chunks in a row Loki took none of (0 once it is stopped: no backoff).
   */
  pushed(key: string, tenant: string, spilled: number | undefined): number {
    this.passed(key, tenant);
    const failures = spilled === undefined ? 0 : (this.#failuresInARow.get(tenant) ?? 0) + 1;
    this.#failuresInARow.set(tenant, failures);
    if (failures < STOP_AFTER_FAILURES) return failures;
    this.#stop(key, tenant, failures, spilled ?? 0);
    return 0;
  }

  /** Records the chunk at `key` of `tenant` handled: the unit's position, or the left tenant's. */
  passed(key: string, tenant: string): void {
    const checkpoint = this.#checkpoint;
    if (checkpoint.lastKey === undefined || key > checkpoint.lastKey) checkpoint.lastKey = key;
    else {
      const left = checkpoint.tenantsLeft?.[tenant];
      if (left) left.after = key;
    }
  }

  /**
   * The keys have passed the checkpoint's `lastKey` (or ended): every chunk of a tenant left
   * earlier, and not stopped again now, has been handled.
   */
  scanned(): void {
    if (this.#retrying.size === 0) return;
    for (const tenant of this.#retrying)
      if (!this.#stopped.has(tenant)) delete this.#checkpoint.tenantsLeft?.[tenant];
    this.#retrying.clear();
    this.#summarize();
  }

  #leftAfter(tenant: string): string | undefined {
    return this.#checkpoint.tenantsLeft?.[tenant]?.after;
  }

  #stop(key: string, tenant: string, failures: number, spilled: number): void {
    this.#stopped.add(tenant);
    const name = tenant ? `tenant ${JSON.stringify(tenant)}` : "the default tenant";
    const reason = `Loki took none of the last ${failures} chunks of ${name} (${spilled} events kept in spill/); its further chunks wait for the run to be started again with the same runId`;
    this.#checkpoint.tenantsLeft = { ...this.#checkpoint.tenantsLeft, [tenant]: { after: key, reason } };
    this.#summarize();
  }

  #summarize(): void {
    const left = Object.values(this.#checkpoint.tenantsLeft ?? {});
    if (left.length === 0) {
      delete this.#checkpoint.tenantsLeft;
      delete this.#checkpoint.stoppedBecause;
    } else this.#checkpoint.stoppedBecause = left.map((entry) => entry.reason).join("; ");
  }
}

function newCheckpoint(unit: ReplayUnit, started: number): ReplayCheckpoint {
  return {
    unitId: unit.unitId,
    source: unit.source,
    prefix: unit.prefix,
    ...groupRefOf(unit),
    chunks: 0,
    ...emptyDeliveryCounts(),
    streamWaits: 0,
    streamWaitMs: 0,
    held: 0,
    removed: 0,
    kept: 0,
    invocations: 0,
    done: false,
    startedAt: new Date(started).toISOString(),
    updatedAt: new Date(started).toISOString(),
    replayMs: 0,
  };
}

/**
 * A spill/ chunk of events Loki refused for the stream limit cannot go in before the streams that
 * filled the tenant have been idle for `chunk_idle_period`: the drain leaves it until then rather
 * than pushing and failing every few minutes.
 */
function isHeldForStreamLimit(
  unit: ReplayUnit,
  header: ChunkHeader,
  deps: ReplayDeps,
  nowMs: number,
): boolean {
  if (unit.source !== "spill" || !deps.streams || !STREAM_LIMIT_REFUSAL.test(header.reason ?? ""))
    return false;
  return Date.parse(header.createdAt) + deps.streams.budget.holdMs > nowMs;
}

function holdChunk(checkpoint: ReplayCheckpoint, chunk: Chunk, deps: ReplayDeps): void {
  const until = Date.parse(chunk.header.createdAt) + (deps.streams?.budget.holdMs ?? 0);
  checkpoint.held += chunk.records.length;
  if (!checkpoint.heldUntil || until > Date.parse(checkpoint.heldUntil))
    checkpoint.heldUntil = new Date(until).toISOString();
}

/**
 * Replays one chunk once the stream budget has room for its hour streams, then removes a spill/ or
 * rejected/ source chunk. Undefined when the budget had no room before the deadline.
 */
async function replayChunk(
  key: string,
  chunk: Chunk,
  unit: ReplayUnit,
  options: ReplayOptions,
  deps: ReplayDeps,
): Promise<ChunkOutcome | undefined> {
  const { labels, logGroup, eventLabels, tenant } = chunk.header;
  // Loki's stream limit and rates are per tenant: so are the budget's counts and the pacing.
  const streamKeys = deps.streams
    ? tenantStreamKeys(tenant, streamKeysOf(labels, chunk.records, eventLabels ?? deps.streams.eventLabels))
    : new Set<string>();
  const wait = (await deps.streams?.budget.admit(streamKeys, deps.deadline)) ?? {
    admitted: true,
    waits: 0,
    waitedMs: 0,
  };
  if (!wait.admitted) return undefined;
  const counts: ChunkOutcome = {
    ...emptyDeliveryCounts(),
    streamWaits: wait.waits,
    streamWaitMs: wait.waitedMs,
    removed: 0,
    kept: 0,
  };
  const rewritten = new Set<string>();
  const pieceBytes = deps.pacer.limits.perStreamBytesPerSecond;
  for (const events of inPieces(chunk.records, options.maxEventsPerDelivery, pieceBytes)) {
    await deps.pacer.take(bytesByStream(labels, events), tenant);
    const delivered = await deps.deliver(
      { logGroup, labels, ...(tenant ? { tenant } : {}), events, ...(eventLabels ? { eventLabels } : {}) },
      deps.deadline,
    );
    deps.streams?.budget.touch(streamKeys);
    addDeliveryCounts(counts, delivered);
    for (const written of delivered.chunkKeys) rewritten.add(written);
    deps.onPushed?.(delivered.pushed);
  }
  if (unit.source === "spill" || unit.source === "rejected") {
    counts[await removeSource(key, rewritten, options, deps)] += 1;
  }
  return counts;
}

/**
 * Deletes (or archives) a replayed spill/ or rejected/ chunk. deliverEvents keeps what Loki did not
 * take under a key made from the content: when nothing was taken that copy can be this very key,
 * which must stay.
 */
async function removeSource(
  key: string,
  rewritten: Set<string>,
  options: ReplayOptions,
  deps: ReplayDeps,
): Promise<"kept" | "removed"> {
  if (rewritten.has(key)) return "kept";
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
  return "removed";
}

/** What replaying one chunk did, added to the unit's checkpoint. */
interface ChunkOutcome extends DeliveryCounts {
  streamWaits: number;
  streamWaitMs: number;
  removed: number;
  kept: number;
}

function addChunkOutcome(checkpoint: ReplayCheckpoint, outcome: ChunkOutcome): void {
  addDeliveryCounts(checkpoint, outcome);
  checkpoint.chunks += 1;
  checkpoint.streamWaits += outcome.streamWaits;
  checkpoint.streamWaitMs += outcome.streamWaitMs;
  checkpoint.removed += outcome.removed;
  checkpoint.kept += outcome.kept;
}

/**
 * The chunk's events in pieces of at most `maxEvents` events and about `maxBytes` line bytes (a
 * second of the per-stream pace): each piece is paced before it goes, so that no burst lifts a
 * stream's rate in Loki over the pace (nor, with the pace below it, over `desired_rate`, where
 * Loki starts sharding the stream).
 */
function* inPieces(records: ChunkRecord[], maxEvents: number, maxBytes: number): Generator<LogEvent[]> {
  let piece: LogEvent[] = [];
  let bytes = 0;
  for (const { id, timestamp, message, logStream } of records) {
    const size = message.length;
    if (piece.length > 0 && (piece.length >= maxEvents || bytes + size > maxBytes)) {
      yield piece;
      piece = [];
      bytes = 0;
    }
    piece.push({ id, timestamp, message, logStream });
    bytes += size;
  }
  if (piece.length > 0) yield piece;
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
