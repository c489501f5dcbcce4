import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import * as z from "zod/mini";
import { DEFAULT_PACING } from "../delivery/pacing.ts";
import { ConfigError, InputError } from "../errors.ts";
import { cutBody } from "../loki/loki-errors.ts";
import "../mini-schema.ts";
import { groupOfKeySegment } from "../storage/chunk-format.ts";
import { getJson, isPreconditionFailed, listPrefixes, putJson, type Store } from "../storage/run-store.ts";
import { DEFAULT_REPLAY_OPTIONS } from "./replay-engine.ts";
import { requestErrorFrom } from "./request-errors.ts";
import type { ReplayUnit } from "./slice-export.ts";

/**
 * A replay: `spill` (what the shipper could not deliver), `rejected` (what Loki refused, after its
 * limits were changed) or `run` (the chunks of an earlier backfill run, `runId`).
 */
const replayRequestSchema = z.strictObject({
  source: z.enum(["spill", "rejected", "run"], { message: 'source must be "spill", "rejected" or "run"' }),
  runId: z.optional(
    z
      .string()
      .check(
        z.regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/, "runId may hold letters, digits, - and _ (at most 80)"),
      ),
  ),
  sourceRunId: z.optional(
    z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/, "sourceRunId is a backfill run id")),
  ),
  logGroupNames: z.optional(z.array(z.string().check(z.minLength(1)))),
  bytesPerSecond: z.optional(z.number().check(z.positive("bytesPerSecond must be above 0"))),
  perStreamBytesPerSecond: z.optional(
    z.number().check(z.positive("perStreamBytesPerSecond must be above 0")),
  ),
  concurrency: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(40))),
  archive: z.optional(z.boolean()),
  /** Check Loki's /ready before a spill drain (default true for spill). */
  checkReady: z.optional(z.boolean()),
  loki: z.optional(z.record(z.string(), z.string())),
});

export type ReplayRequestInput = z.input<typeof replayRequestSchema>;

export interface ReplayRequest {
  source: "spill" | "rejected" | "run";
  runId?: string;
  sourceRunId?: string;
  logGroupNames?: string[];
  concurrency: number;
  checkReady: boolean;
  loki: Record<string, string>;
  options: ReplayRunOptions;
}

/** What every unit of a replay shares (passed to each branch by the state machine). */
export interface ReplayRunOptions {
  bytesPerSecond: number;
  /** Absent: half the tenant's `shard_streams.desired_rate` at most (see defaultPacing). */
  perStreamBytesPerSecond?: number;
  concurrency: number;
  archive: boolean;
  maxEventsPerDelivery: number;
  loki: Record<string, string>;
}

export function parseReplayRequest(input: unknown): ReplayRequest {
  const parsed = replayRequestSchema.safeParse(input);
  if (!parsed.success) throw requestErrorFrom("replay request", parsed.error);
  const request = parsed.data;
  if (request.source === "run" && !request.sourceRunId) {
    throw new InputError(
      'Invalid replay request: source "run" needs sourceRunId, the backfill run whose chunks to replay',
    );
  }
  const concurrency = request.concurrency ?? 2;
  const loki = request.loki ?? {};
  return {
    source: request.source,
    ...(request.runId ? { runId: request.runId } : {}),
    ...(request.sourceRunId ? { sourceRunId: request.sourceRunId } : {}),
    ...(request.logGroupNames ? { logGroupNames: request.logGroupNames } : {}),
    concurrency,
    checkReady: request.checkReady ?? request.source === "spill",
    loki,
    options: {
      // Each parallel branch paces itself to its share of the tenant's budget.
      bytesPerSecond: (request.bytesPerSecond ?? DEFAULT_PACING.bytesPerSecond) / concurrency,
      ...(request.perStreamBytesPerSecond
        ? { perStreamBytesPerSecond: request.perStreamBytesPerSecond }
        : {}),
      concurrency,
      archive: request.archive ?? DEFAULT_REPLAY_OPTIONS.archive,
      maxEventsPerDelivery: DEFAULT_REPLAY_OPTIONS.maxEventsPerDelivery,
      loki,
    },
  };
}

/** Only one drain of spill/ at a time: two would push the same chunks and race on deleting them. */
export const SPILL_LOCK_KEY = "locks/replay-spill.json";
/** A lock older than this is taken over (its holder died without releasing it). */
export const LOCK_TTL_MS = 2 * 3_600_000;

export interface LockRecord {
  runId: string;
  acquiredAt: string;
  expiresAt: string;
}

export interface ReplayPlanOutput {
  run: {
    runId: string;
    source: ReplayRequest["source"];
    status: "ready" | "loki-not-ready" | "locked";
    message?: string;
    lockKey?: string;
    unitCount: number;
    startedAt: string;
  };
  units: ReplayUnit[];
  options: ReplayRunOptions;
}

export interface ReplayPlanDeps {
  store: Store;
  /** Resolves true when Loki answers ready (GET /ready). */
  lokiReady: () => Promise<boolean>;
  now?: () => number;
}

export async function planReplay(
  request: ReplayRequest,
  runId: string,
  deps: ReplayPlanDeps,
): Promise<ReplayPlanOutput> {
  const now = (deps.now ?? Date.now)();
  const run: ReplayPlanOutput["run"] = {
    runId,
    source: request.source,
    status: "ready",
    unitCount: 0,
    startedAt: new Date(now).toISOString(),
  };
  const result = (): ReplayPlanOutput => ({ run, units: [], options: request.options });
  if (request.checkReady && !(await deps.lokiReady())) {
    run.status = "loki-not-ready";
    run.message = "Loki did not answer ready; the spill stays in S3 for the next drain";
    return result();
  }
  if (request.source === "spill") {
    const holder = await acquireLock(deps.store, SPILL_LOCK_KEY, runId, now);
    if (holder) {
      run.status = "locked";
      run.message = `another drain (${holder.runId}, since ${holder.acquiredAt}) holds s3://${deps.store.bucket}/${SPILL_LOCK_KEY}`;
      return result();
    }
    run.lockKey = SPILL_LOCK_KEY;
  }
  const prefix = request.source === "run" ? `runs/${request.sourceRunId}/chunks/` : `${request.source}/`;
  const groupPrefixes = await listPrefixes(deps.store, prefix);
  const wanted = request.logGroupNames ? new Set(request.logGroupNames) : undefined;
  const units: ReplayUnit[] = [];
  for (const groupPrefix of groupPrefixes) {
    const segment = groupPrefix.slice(prefix.length, -1);
    // A backfill run's chunks are under each group's account and region too (groupKeySegment).
    const group = groupOfKeySegment(segment);
    if (wanted && !wanted.has(group.logGroup)) continue;
    units.push({
      unitId: `${request.source}-${segment}`,
      source: request.source,
      prefix: groupPrefix,
      ...group,
    });
  }
  if (request.source === "run" && units.length === 0) {
    throw new InputError(
      `Run ${request.sourceRunId} has no chunks under s3://${deps.store.bucket}/${prefix}`,
    );
  }
  run.unitCount = units.length;
  await putJson(deps.store, `runs/${runId}/plan.json`, { runId, request, units, createdAt: run.startedAt });
  return { run, units, options: request.options };
}

/** Takes the lock with a conditional write; returns the holder when someone else has it. */
export async function acquireLock(
  store: Store,
  key: string,
  runId: string,
  now: number,
  ttlMs = LOCK_TTL_MS,
): Promise<LockRecord | undefined> {
  const record: LockRecord = {
    runId,
    acquiredAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ttlMs).toISOString(),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await store.s3.send(
        new PutObjectCommand({
          Bucket: store.bucket,
          Key: key,
          Body: JSON.stringify(record),
          ContentType: "application/json",
          IfNoneMatch: "*",
        }),
      );
      return undefined;
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error;
    }
    const holder = await getJson<LockRecord>(store, key);
    if (holder?.runId === runId) return undefined;
    if (holder && Date.parse(holder.expiresAt) > now) return holder;
    // Expired: its holder died without releasing it.
    await store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
  }
  return (await getJson<LockRecord>(store, key)) ?? { runId: "unknown", acquiredAt: "", expiresAt: "" };
}

export async function releaseLock(store: Store, key: string, runId: string): Promise<boolean> {
  const holder = await getJson<LockRecord>(store, key);
  if (holder?.runId !== runId) return false;
  await store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
  return true;
}

/** Loki's readiness endpoint next to the push URL (`/ready`, 200 when it takes writes). */
export function readyUrl(pushUrl: string): string {
  const url = new URL(pushUrl);
  url.pathname = `${url.pathname.replace(/\/loki\/api\/v1\/push\/?$/, "")}/ready`;
  url.pathname = url.pathname.replace(/\/\/+/g, "/");
  return url.toString();
}

/**
 * True when Loki answers ready, false when it is down or not ready yet (the drain waits for the
 * next schedule). A 401 or 403 is no passing state but a configuration error: it throws, saying so.
 */
export async function checkLokiReady(
  pushUrl: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<boolean> {
  const url = readyUrl(pushUrl);
  let answer: { status: number; ok: boolean; body: string };
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    answer = { status: response.status, ok: response.ok, body: await response.text() };
  } catch {
    return false;
  }
  if (answer.status === 401 || answer.status === 403) {
    throw new ConfigError(
      `Loki refused our credentials: GET ${url} answered ${answer.status}: ${cutBody(answer.body).trim()}; ` +
        "check LOKI_TENANT, LOKI_AUTH and the secret in LOKI_SECRET_ARN or LOKI_SECRET_PARAMETER",
    );
  }
  // A gateway in front of Loki (Grafana Cloud, a proxy) may not route /ready: then there is
  // nothing to check, and the drain stops by itself when Loki takes nothing.
  return answer.ok || answer.status === 404;
}
