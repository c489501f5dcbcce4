import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { type FilterPage, readFilterPage } from "../cloudwatch/cloudwatch-pager.ts";
import type { RateBudget } from "../cloudwatch/rate-budget.ts";
import { addDropped, RuleSet } from "../delivery/rules.ts";
import { InputError, LokiShipperError } from "../errors.ts";
import { compareEvents, type LogEvent } from "../log-event.ts";
import {
  CHUNK_FORMAT,
  type Chunk,
  describeGroup,
  type GroupRef,
  groupKeySegment,
} from "../storage/chunk-format.ts";
import {
  deleteKeys,
  getJson,
  listKeys,
  putChunk,
  putJson,
  runKeys,
  type Store,
} from "../storage/run-store.ts";
import type { PlannedGroup, RunOptions, SliceTask } from "./backfill-plan.ts";

/** A slice needed more invocations than a run allows: something keeps it from finishing. */
export class ExportLoopLimitError extends LokiShipperError {}

/**
 * Invocations one slice may take. Each reads up to `maxPagesPerInvocation` pages; the cap keeps a
 * stuck slice from filling the execution's 25,000-event history (each loop costs ~7 events).
 */
export const MAX_EXPORT_INVOCATIONS_PER_SLICE = 200;
/** Uncompressed message bytes per chunk, so a chunk is always a bounded read for the replay. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

/** Saved after every chunk write: a retried or timed-out export resumes from here. */
export interface ExportCheckpoint extends GroupRef {
  sliceId: string;
  startMs: number;
  endMs: number;
  /** FilterLogEvents token of the first page not yet in a chunk (absent: start of the slice). */
  nextToken?: string;
  /** Sequence number the next chunk gets; chunks with a higher or equal number are leftovers. */
  nextSeq: number;
  pages: number;
  events: number;
  bytes: number;
  throttled: number;
  invocations: number;
  done: boolean;
  startedAt: string;
  updatedAt: string;
  /** Time spent exporting, summed over invocations. */
  exportMs: number;
  /** Times the slice was started again because its FilterLogEvents token had expired. */
  restarted?: number;
  /** Events a drop rule kept out of the chunks, keyed "rule N" (`events` counts the rest). */
  dropped?: Record<string, number>;
}

export interface ReplayUnit extends GroupRef {
  unitId: string;
  source: "backfill" | "spill" | "rejected" | "run";
  /** Chunks under this prefix are replayed in key order. */
  prefix: string;
}

export interface ExportResult {
  status: "continue" | "done";
  invocations: number;
  events: number;
  replayUnit: ReplayUnit;
}

export interface ExportDeps {
  logs: CloudWatchLogsClient;
  store: Store;
  budget: RateBudget;
  /** Epoch ms after which no further page is read (the Lambda's remaining time minus a margin). */
  deadline: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onEvents?: (count: number) => void;
  onThrottle?: (attempt: number, waitMs: number) => void;
  /**
   * Drop and mask rules, applied before events are written to a chunk: the chunks hold events as
   * shipped, exactly as the live shipper shapes them, and nothing masked reaches S3.
   */
  rules?: RuleSet;
  /**
   * Called after each checkpoint save with the sequence number below which every chunk of the
   * slice is final (written, and covered by the checkpoint), and the chunks just written (the last
   * ones below it): those may be replayed at once.
   */
  onChunksFinal?: (nextSeq: number, written: Chunk[]) => void;
}

/** The replay unit of a slice's chunks: its export hands them on, ReplaySlice finishes them. */
export function sliceReplayUnit(runId: string, slice: SliceTask): ReplayUnit {
  const groupSegment = groupKeySegment(slice);
  return {
    unitId: `backfill-${groupSegment}-${slice.sliceId}`,
    source: "backfill",
    prefix: runKeys.sliceChunks(runId, groupSegment, slice.sliceId),
    ...groupRefOf(slice),
  };
}

/** The log group of a slice, with its account and region when the plan named them. */
export function groupRefOf(slice: GroupRef): GroupRef {
  const { logGroup, account, region } = slice;
  return account ? { logGroup, account, region } : { logGroup };
}

/** The key of chunk `seq` of a slice. */
export function sliceChunkKey(runId: string, slice: SliceTask, seq: number): string {
  return runKeys.chunk(runId, groupKeySegment(slice), slice.sliceId, seq);
}

/**
 * Exports one slice from FilterLogEvents into chunk objects
 * `runs/<runId>/chunks/<group>/<slice>/<seq>.ndjson.gz`, a bounded number of pages per call.
 *
 * Exactly-once in S3: chunks are written only at page boundaries and the checkpoint (nextToken,
 * nextSeq) follows each write, so an invocation that dies between the two leaves chunks numbered
 * nextSeq and above, which the next invocation deletes before it reads the same pages again.
 */
export async function exportSlice(
  runId: string,
  slice: SliceTask,
  options: RunOptions,
  deps: ExportDeps,
): Promise<ExportResult> {
  const now = deps.now ?? Date.now;
  const started = now();
  const groupSegment = groupKeySegment(slice);
  const replayUnit = sliceReplayUnit(runId, slice);
  const keys = {
    checkpoint: runKeys.exportCheckpoint(runId, groupSegment, slice.sliceId),
    chunks: replayUnit.prefix,
    chunk: (seq: number) => sliceChunkKey(runId, slice, seq),
    replayCheckpoint: runKeys.replayCheckpoint(runId, replayUnit.unitId),
  };
  const checkpoint = await loadCheckpoint(deps.store, keys.checkpoint, slice, started);
  if (checkpoint.done) {
    return { status: "done", invocations: checkpoint.invocations, events: checkpoint.events, replayUnit };
  }
  if (checkpoint.invocations >= MAX_EXPORT_INVOCATIONS_PER_SLICE) {
    throw new ExportLoopLimitError(
      `Slice ${slice.sliceId} of ${describeGroup(slice)} is not exported after ${checkpoint.invocations} invocations: use shorter slices (sliceHours) or more pages per invocation`,
    );
  }
  checkpoint.invocations += 1;
  const group = await getJson<PlannedGroup>(deps.store, runKeys.group(runId, groupSegment));
  if (!group) {
    throw new InputError(
      `Run ${runId} has no planned group ${describeGroup(slice)} (${runKeys.group(runId, groupSegment)})`,
    );
  }
  const leftovers = (await listKeys(deps.store, keys.chunks)).filter(
    (key) => chunkSeq(key) >= checkpoint.nextSeq,
  );
  if (leftovers.length > 0) await deleteKeys(deps.store, leftovers);

  const exporter = new SliceExporter({
    runId,
    slice,
    options,
    deps,
    keys,
    group,
    checkpoint,
    now,
    started,
  });
  const finished = await exporter.run();
  return {
    status: finished ? "done" : "continue",
    invocations: checkpoint.invocations,
    events: checkpoint.events,
    replayUnit,
  };
}

async function loadCheckpoint(
  store: Store,
  key: string,
  slice: SliceTask,
  startedMs: number,
): Promise<ExportCheckpoint> {
  return (
    (await getJson<ExportCheckpoint>(store, key)) ?? {
      ...groupRefOf(slice),
      sliceId: slice.sliceId,
      startMs: slice.startMs,
      endMs: slice.endMs,
      nextSeq: 0,
      pages: 0,
      events: 0,
      bytes: 0,
      throttled: 0,
      invocations: 0,
      done: false,
      startedAt: new Date(startedMs).toISOString(),
      updatedAt: new Date(startedMs).toISOString(),
      exportMs: 0,
    }
  );
}

interface ExporterSetup {
  runId: string;
  slice: SliceTask;
  options: RunOptions;
  deps: ExportDeps;
  keys: { checkpoint: string; chunks: string; chunk: (seq: number) => string; replayCheckpoint: string };
  /** The group's labels and its own tenant (absent: the default one), remembered in every chunk. */
  group: Pick<PlannedGroup, "labels" | "tenant">;
  checkpoint: ExportCheckpoint;
  now: () => number;
  /** When this invocation started: the export time counts from here. */
  started: number;
}

/** One invocation's export of a slice: reads pages into a buffer and saves it as chunks. */
class SliceExporter {
  readonly #setup: ExporterSetup;
  readonly #rules: RuleSet;
  #buffer: LogEvent[] = [];
  /** Events a drop rule kept out of the buffer, added to the checkpoint when the buffer is saved. */
  #bufferDropped: Record<string, number> = {};
  #bufferPages = 0;
  #pagesThisCall = 0;
  #token: string | undefined;
  #finished = false;
  #lastSave: number;

  constructor(setup: ExporterSetup) {
    this.#setup = setup;
    this.#rules = setup.deps.rules ?? RuleSet.empty;
    this.#token = setup.checkpoint.nextToken;
    this.#lastSave = setup.started;
  }

  /** Reads pages until the slice ends, the page budget is spent or the deadline comes; true when done. */
  async run(): Promise<boolean> {
    const { options, deps, now } = this.#setup;
    while (!this.#finished) {
      if (this.#pagesThisCall >= options.maxPagesPerInvocation || now() >= deps.deadline) break;
      const page = await this.#readPage();
      if (!page) continue;
      this.#pagesThisCall += 1;
      this.#bufferPages += 1;
      this.#setup.checkpoint.throttled += page.throttled;
      const shaped = this.#rules.shape(this.#setup.slice.logGroup, page.events);
      for (const event of shaped.events) this.#buffer.push(event);
      addDropped(this.#bufferDropped, shaped.dropped);
      this.#token = page.nextToken;
      this.#finished = this.#token === undefined;
      const full =
        this.#buffer.length >= options.maxEventsPerChunk || bufferBytes(this.#buffer) >= MAX_CHUNK_BYTES;
      if (this.#finished || full) await this.#save();
    }
    if (!this.#finished && this.#bufferPages > 0) await this.#save();
    else if (!this.#finished) {
      this.#setup.checkpoint.updatedAt = new Date(now()).toISOString();
      await putJson(deps.store, this.#setup.keys.checkpoint, this.#setup.checkpoint);
    }
    return this.#finished;
  }

  /** The next page, or undefined when the slice had to start again (expired token). */
  async #readPage(): Promise<FilterPage | undefined> {
    const { slice, options, deps } = this.#setup;
    const query = {
      logGroupName: slice.logGroup,
      startMs: slice.startMs,
      endMs: slice.endMs,
      ...(options.filterPattern ? { filterPattern: options.filterPattern } : {}),
      ...(options.logStreamNames ? { logStreamNames: options.logStreamNames } : {}),
      ...(options.logStreamNamePrefix ? { logStreamNamePrefix: options.logStreamNamePrefix } : {}),
    };
    try {
      return await readFilterPage(deps.logs, query, this.#token, {
        budget: deps.budget,
        ...(deps.sleep ? { sleep: deps.sleep } : {}),
        ...(deps.onThrottle ? { onThrottle: deps.onThrottle } : {}),
      });
    } catch (error) {
      // Only before this invocation's first page: no chunk of it is being replayed yet. (A token
      // expiring later fails the invocation; its retry starts the slice again.)
      if (!(this.#token && isExpiredToken(error) && this.#pagesThisCall === 0)) throw error;
      await this.#restart();
      return undefined;
    }
  }

  /**
   * A run resumed after more than 24 h holds an expired token: start the slice again from a clean
   * state. Its chunks go, and so does its replay checkpoint, so that the new chunks are all
   * replayed; the events pushed before keep their timestamps and streams, and Loki stores them once.
   */
  async #restart(): Promise<void> {
    const { deps, keys, checkpoint } = this.#setup;
    await deleteKeys(deps.store, [...(await listKeys(deps.store, keys.chunks)), keys.replayCheckpoint]);
    Object.assign(checkpoint, {
      nextSeq: 0,
      pages: 0,
      events: 0,
      bytes: 0,
      restarted: (checkpoint.restarted ?? 0) + 1,
    });
    delete checkpoint.nextToken;
    delete checkpoint.dropped;
    this.#token = undefined;
    await putJson(deps.store, keys.checkpoint, checkpoint);
  }

  /** Writes the buffer as chunks, then the checkpoint that points past them. */
  async #save(): Promise<void> {
    const { runId, slice, options, deps, keys, group, checkpoint, now } = this.#setup;
    const written: Chunk[] = [];
    for (const records of splitIntoChunks(this.#buffer, options.maxEventsPerChunk)) {
      const chunk: Chunk = {
        header: {
          format: CHUNK_FORMAT,
          kind: "backfill",
          ...groupRefOf(slice),
          labels: group.labels,
          ...(group.tenant ? { tenant: group.tenant } : {}),
          createdAt: new Date(now()).toISOString(),
          runId,
        },
        // In the order the chunk format keeps them, so the replay can take this very object.
        records: records.sort(compareEvents),
      };
      checkpoint.bytes += await putChunk(deps.store, keys.chunk(checkpoint.nextSeq), chunk);
      written.push(chunk);
      checkpoint.nextSeq += 1;
    }
    checkpoint.events += this.#buffer.length;
    if (Object.keys(this.#bufferDropped).length > 0) {
      checkpoint.dropped ??= {};
      addDropped(checkpoint.dropped, this.#bufferDropped);
    }
    checkpoint.pages += this.#bufferPages;
    if (this.#token) checkpoint.nextToken = this.#token;
    else delete checkpoint.nextToken;
    checkpoint.done = this.#finished;
    checkpoint.updatedAt = new Date(now()).toISOString();
    checkpoint.exportMs += now() - this.#lastSave;
    this.#lastSave = now();
    await putJson(deps.store, keys.checkpoint, checkpoint);
    deps.onChunksFinal?.(checkpoint.nextSeq, written);
    deps.onEvents?.(this.#buffer.length);
    this.#buffer = [];
    this.#bufferDropped = {};
    this.#bufferPages = 0;
  }
}

/** FilterLogEvents tokens expire after 24 hours (InvalidParameterException). */
function isExpiredToken(error: unknown): boolean {
  const cause = (error as { cause?: { name?: string; message?: string } })?.cause;
  return cause?.name === "InvalidParameterException" && /token/i.test(cause.message ?? "");
}

/** The sequence number of a chunk key (`.../000042.ndjson.gz`). */
export function chunkSeq(key: string): number {
  const name = key.slice(key.lastIndexOf("/") + 1);
  return Number.parseInt(name, 10);
}

function bufferBytes(events: LogEvent[]): number {
  let bytes = 0;
  for (const event of events) bytes += Buffer.byteLength(event.message);
  return bytes;
}

/** Consecutive pieces of at most `maxEvents` events and {@link MAX_CHUNK_BYTES} bytes. */
function splitIntoChunks(events: LogEvent[], maxEvents: number): LogEvent[][] {
  const chunks: LogEvent[][] = [];
  let current: LogEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    const size = Buffer.byteLength(event.message);
    if (current.length > 0 && (current.length >= maxEvents || bytes + size > MAX_CHUNK_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
