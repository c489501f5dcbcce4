import type { Logger } from "@aws-lambda-powertools/logger";
import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { S3Client } from "@aws-sdk/client-s3";
import { type AccountRateBudgets, perBranchRate, RateBudget } from "../cloudwatch/rate-budget.ts";
import { deliverEvents } from "../delivery/deliver.ts";
import { type GroupMetrics, replayPath } from "../delivery/delivery-metrics.ts";
import { defaultPacing, Pacer } from "../delivery/pacing.ts";
import { RuleSet } from "../delivery/rules.ts";
import {
  parseStreamBudgetSettings,
  perBranchStreams,
  StreamBudget,
  streamHoldMs,
} from "../delivery/stream-budget.ts";
import { InputError } from "../errors.ts";
import { type FunctionLookupClients, functionLookupClientsLike } from "../labels/function-lookup.ts";
import { type EventLabelOptions, type LabelOptions, parseLabelOptions } from "../labels/labels.ts";
import type { TenantRouting } from "../labels/tenant-routing.ts";
import type { LokiPushClient } from "../loki/loki-client.ts";
import {
  authorizationHeader,
  createLokiPushClient,
  type LokiTarget,
  parseLokiTarget,
} from "../loki/loki-target.ts";
import type { DeliveryPath } from "../metric-names.ts";
import type { Store } from "../storage/run-store.ts";
import {
  loadPlanOutput,
  type PlanOutput,
  planBackfill,
  type RunOptions,
  type SliceTask,
} from "./backfill-plan.ts";
import { parseBackfillRequest } from "./backfill-request.ts";
import { FinalChunks } from "./final-chunks.ts";
import {
  type ChunkSource,
  DEFAULT_REPLAY_OPTIONS,
  type DeliverBatch,
  type ReplayResult,
  replayUnit,
} from "./replay-engine.ts";
import {
  checkLokiReady,
  parseReplayRequest,
  planReplay,
  type ReplayPlanOutput,
  releaseLock,
} from "./replay-plan.ts";
import { buildRunReport, type FinishInput, type RunReport } from "./run-report.ts";
import {
  type ExportDeps,
  type ExportResult,
  exportSlice,
  type ReplayUnit,
  sliceChunkKey,
  sliceReplayUnit,
} from "./slice-export.ts";
import { type AccountAccess, accountAccessLike } from "./source-access.ts";
import { withStreamLane } from "./stream-lanes.ts";

/**
 * The work behind every Task state of statemachines/backfill.asl.json and replay.asl.json, over
 * injected clients: the Lambda handlers (functions/backfill-*.ts, replay-*.ts, finish-run.ts) call
 * it with the function's clients and environment, the local runner (local-workflow.ts) in-process.
 */
export interface WorkflowDeps {
  logs: CloudWatchLogsClient;
  /** Lambda and Tagging API clients for function labels; default: like `logs` (same region and endpoint). */
  functions?: FunctionLookupClients;
  s3: S3Client;
  bucket: string;
  /**
   * `LOKI_*` and `LABEL_*` settings (a request's `loki`/`labels` fields override them), and
   * `LOG_RULES`, applied when the backfill exports events (replays read them shaped).
   */
  env: Record<string, string | undefined>;
  /** `env` already parsed (at cold start); parsed here once when not given. */
  parsedEnv?: WorkflowSettings;
  logger?: Logger;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * The clients of the accounts and regions a request names, through their reader roles; default:
   * like `logs` (its region, credentials and endpoint), with SOURCE_READER_ROLE_NAME from `env`.
   */
  accounts?: AccountAccess;
  /**
   * One FilterLogEvents budget per account and region for all branches (local runs, where the
   * branches share a process). Without it each invocation takes `requestsPerSecond / concurrency`:
   * in AWS every branch is its own Lambda, and the shares add up to the budget the request allows.
   */
  sharedRateBudgets?: AccountRateBudgets;
  /** One pacer for all replay branches (local runs); without it each takes its share. */
  sharedPacer?: Pacer;
  /**
   * One stream budget for all branches and child executions (local runs); without it each
   * invocation holds its share of the run's streams (perBranchStreams).
   */
  sharedStreamBudget?: StreamBudget;
  /** Builds the Loki client for a target (tests pass a faulty one); default: createLokiPushClient. */
  lokiClient?: (env: Record<string, string | undefined>) => Promise<LokiPushClient>;
  lokiReady?: (env: Record<string, string | undefined>) => Promise<boolean>;
  onProgress?: (delta: { exported?: number; pushed?: number; throttled?: number }) => void;
  /** Per log group counts and freshness of a replay invocation (Lambda only: EMF on stdout). */
  groupMetrics?: (logGroup: string, path: DeliveryPath) => GroupMetrics;
}

/** Time an invocation leaves unused at the end of its budget to save its checkpoint. */
const SAFETY_MARGIN_MS = 30_000;

export interface PlanBackfillEvent {
  request?: unknown;
  executionName?: string;
  startedAt?: string;
  loadPart?: { runId: string; partIndex: number };
}

export interface ExportSliceEvent {
  runId: string;
  slice: SliceTask;
  options: RunOptions;
}

export interface ReplayChunksEvent {
  runId: string;
  unit: ReplayUnit;
  options: Partial<RunOptions> & {
    loki?: Record<string, string>;
    bytesPerSecond?: number;
    perStreamBytesPerSecond?: number;
    concurrency?: number;
    archive?: boolean;
    maxEventsPerDelivery?: number;
  };
}

export interface PlanReplayEvent {
  request: unknown;
  executionName?: string;
  startedAt?: string;
}

export interface FinishRunEvent extends FinishInput {
  run?: {
    status?: string;
    message?: string;
    lockKey?: string;
    startedAt?: string;
    dryRun?: boolean;
    sliceCount?: number;
    estimate?: string;
  };
}

export interface WorkflowTasks {
  planBackfill(event: PlanBackfillEvent): Promise<PlanOutput>;
  exportSlice(event: ExportSliceEvent, remainingMs?: number): Promise<ExportTaskResult>;
  replayChunks(event: ReplayChunksEvent, remainingMs?: number): Promise<ReplayResult>;
  planReplay(event: PlanReplayEvent): Promise<ReplayPlanOutput>;
  finishRun(event: FinishRunEvent): Promise<RunReport>;
}

/** The Loki target and label options a task works with. */
export interface WorkflowSettings {
  loki: LokiTarget;
  labels: LabelOptions;
}

/**
 * The function's settings, parsed once, and those of requests that override some of them
 * (`loki`, `labels` fields), parsed once per distinct override.
 */
class SettingsCache {
  readonly #env: Record<string, string | undefined>;
  readonly #loki = new Map<string, LokiTarget>();
  readonly #labels = new Map<string, LabelOptions>();

  constructor(env: Record<string, string | undefined>, parsed: WorkflowSettings | undefined) {
    this.#env = env;
    this.#loki.set("{}", parsed?.loki ?? parseLokiTarget(env));
    this.#labels.set("{}", parsed?.labels ?? parseLabelOptions(env));
  }

  /** The environment with a request's overrides, for hooks that take raw settings. */
  env(overrides: Record<string, string> | undefined): Record<string, string | undefined> {
    return { ...this.#env, ...overrides };
  }

  loki(overrides: Record<string, string> | undefined): LokiTarget {
    return cached(this.#loki, overrides, () => parseLokiTarget(this.env(overrides)));
  }

  labels(overrides: Record<string, string> | undefined): LabelOptions {
    return cached(this.#labels, overrides, () => parseLabelOptions(this.env(overrides)));
  }
}

function cached<T>(cache: Map<string, T>, overrides: Record<string, string> | undefined, parse: () => T): T {
  const key = JSON.stringify(overrides ?? {});
  let value = cache.get(key);
  if (value === undefined) {
    value = parse();
    cache.set(key, value);
  }
  return value;
}

/** What every task of one function shares: its deps, the store, the parsed settings and Loki clients. */
class TaskContext {
  readonly deps: WorkflowDeps;
  readonly now: () => number;
  readonly store: Store;
  /** Compiled once: a bad rule fails here, at cold start, with every problem listed. */
  readonly rules: RuleSet;
  readonly settings: SettingsCache;
  readonly functions: FunctionLookupClients;
  readonly accounts: AccountAccess;
  readonly #lokiClients = new Map<string, Promise<LokiPushClient>>();

  constructor(deps: WorkflowDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.store = { s3: deps.s3, bucket: deps.bucket };
    this.rules = RuleSet.fromJson(deps.env.LOG_RULES);
    this.settings = new SettingsCache(deps.env, deps.parsedEnv);
    this.functions = deps.functions ?? functionLookupClientsLike(deps.logs);
    this.accounts = deps.accounts ?? accountAccessLike(deps.logs, this.functions, deps.env);
  }

  /** The CloudWatch Logs client of a slice's account and region (runs of earlier versions: the own one). */
  async logsOf(slice: SliceTask): Promise<CloudWatchLogsClient> {
    if (!slice.account || !slice.region) return this.deps.logs;
    return (await this.accounts.clients({ account: slice.account, region: slice.region })).logs;
  }

  /** One push client per Loki target (a failed creation is tried again next time). */
  lokiFor(overrides: Record<string, string> | undefined): Promise<LokiPushClient> {
    const key = JSON.stringify(overrides ?? {});
    let client = this.#lokiClients.get(key);
    if (!client) {
      client = this.deps.lokiClient
        ? this.deps.lokiClient(this.settings.env(overrides))
        : createLokiPushClient(this.settings.loki(overrides));
      this.#lokiClients.set(key, client);
      client.catch(() => this.#lokiClients.delete(key));
    }
    return client;
  }

  /** The epoch ms a task stops at, leaving time to save its checkpoint. */
  deadlineFrom(remainingMs: number | undefined): number {
    return this.now() + Math.max(5_000, (remainingMs ?? 15 * 60_000) - SAFETY_MARGIN_MS);
  }
}

export function createWorkflowTasks(deps: WorkflowDeps): WorkflowTasks {
  const context = new TaskContext(deps);
  return {
    planBackfill: (event) => planBackfillTask(context, event),
    exportSlice: (event, remainingMs) => exportSliceTask(context, event, remainingMs),
    replayChunks: (event, remainingMs) => replayChunksTask(context, event, remainingMs),
    planReplay: (event) => planReplayTask(context, event),
    finishRun: (event) => finishRunTask(context, event),
  };
}

async function planBackfillTask(context: TaskContext, event: PlanBackfillEvent): Promise<PlanOutput> {
  const { deps, store, now, settings } = context;
  if (event.loadPart) return loadPlanOutput(store, event.loadPart.runId, event.loadPart.partIndex, true);
  const request = parseBackfillRequest(event.request, { now: now() });
  // The Loki target is checked before anything runs: a typo should not surface after the export.
  settings.loki(request.loki);
  const runId = request.runId ?? event.executionName;
  if (!runId)
    throw new InputError("A backfill needs a runId (the execution name is used when none is given)");
  return planBackfill(request, runId, {
    logs: deps.logs,
    functions: context.functions,
    accounts: context.accounts,
    store,
    labels: settings.labels(request.labels),
    streamBudget: parseStreamBudgetSettings(settings.env(request.loki)),
    now,
  });
}

/** What ExportSlice answers; `replayed`: its chunks are all in Loki too, so ReplaySlice is skipped. */
export interface ExportTaskResult extends ExportResult {
  replayed: boolean;
}

/**
 * Exports one slice and, in the same invocation, replays each chunk as soon as the export has made
 * it final, while the export reads on. Both keep their checkpoints as when they ran one after the
 * other: what this replay has not finished (a deadline, a full stream budget, a failure), the
 * next invocation or ReplaySlice takes up after the replay checkpoint's last chunk.
 */
async function exportSliceTask(
  context: TaskContext,
  event: ExportSliceEvent,
  remainingMs: number | undefined,
): Promise<ExportTaskResult> {
  const deadline = context.deadlineFrom(remainingMs);
  const finalChunks = new FinalChunks((seq) => sliceChunkKey(event.runId, event.slice, seq));
  // Settled as soon as it starts: a replay that fails while the export reads on is not left unhandled.
  let replaying: Promise<PromiseSettledResult<ReplayResult>> | undefined;
  const exported = await settle(
    exportSliceOnly(context, event, deadline, (nextSeq, written) => {
      finalChunks.advance(nextSeq, written);
      // Started with the first final chunk: an export that starts its slice again (expired token)
      // does so before, while nothing of the slice is being replayed.
      replaying ??= settle(
        replayWithinBudget(
          context,
          { runId: event.runId, unit: sliceReplayUnit(event.runId, event.slice), options: event.options },
          deadline,
          { source: finalChunks },
        ),
      );
    }),
  );
  finalChunks.end(exported.status === "fulfilled" && exported.value.status === "done");
  // The replay finishes its chunks before the invocation returns, also when the export failed:
  // a retried invocation must not find it still running.
  const replayed = await replaying;
  if (exported.status === "rejected") throw exported.reason;
  if (replayed?.status === "rejected") throw replayed.reason;
  return { ...exported.value, replayed: replayed?.value.status === "done" && finalChunks.complete };
}

function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return Promise.allSettled([promise]).then(([result]) => result as PromiseSettledResult<T>);
}

async function exportSliceOnly(
  context: TaskContext,
  event: ExportSliceEvent,
  deadline: number,
  onChunksFinal: NonNullable<ExportDeps["onChunksFinal"]>,
): Promise<ExportResult> {
  const { deps } = context;
  const { account, region } = event.slice;
  const budget =
    deps.sharedRateBudgets?.of(account, region) ??
    new RateBudget(perBranchRate(event.options.requestsPerSecond, event.options.concurrency), {
      burst: 1,
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
    });
  return exportSlice(event.runId, event.slice, event.options, {
    logs: await context.logsOf(event.slice),
    store: context.store,
    budget,
    rules: context.rules,
    deadline,
    now: context.now,
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    onChunksFinal,
    onEvents: (count) => deps.onProgress?.({ exported: count }),
    onThrottle: (attempt, waitMs) => {
      deps.onProgress?.({ throttled: 1 });
      deps.logger?.warn("FilterLogEvents throttled, backing off", {
        attempt,
        waitMs,
        logGroup: event.slice.logGroup,
        ...(account ? { account, region } : {}),
      });
    },
  });
}

function replayChunksTask(
  context: TaskContext,
  event: ReplayChunksEvent,
  remainingMs: number | undefined,
): Promise<ReplayResult> {
  return replayWithinBudget(context, event, context.deadlineFrom(remainingMs));
}

/** Replays a unit's chunks (from `chunks.source`, by default its prefix) paced, within the stream budget. */
async function replayWithinBudget(
  context: TaskContext,
  event: ReplayChunksEvent,
  deadline: number,
  chunks: { source?: ChunkSource } = {},
): Promise<ReplayResult> {
  const { deps, now } = context;
  const options = event.options;
  const concurrency = options.concurrency ?? 1;
  const loki = await context.lokiFor(options.loki);
  const labelOptions = context.settings.labels(options.labels);
  const eventLabels = {
    logStreamLabel: labelOptions.logStreamLabel,
    structuredMetadata: labelOptions.structuredMetadata,
  };
  const desiredRate = context.settings.loki(options.loki).shardStreams.desiredRateBytes;
  const pacer = replayPacer(deps, options, concurrency, desiredRate);
  const groupMetrics = deps.groupMetrics?.(event.unit.logGroup, replayPath(event.unit.source));
  const deliver = unitDelivery(deps, {
    loki,
    tenants: labelOptions.tenants,
    runId: event.runId,
    eventLabels,
    now,
    groupMetrics,
  });
  const replay = (streamBudget: StreamBudget) =>
    replayUnit(
      event.runId,
      event.unit,
      {
        archive: options.archive ?? DEFAULT_REPLAY_OPTIONS.archive,
        maxEventsPerDelivery: options.maxEventsPerDelivery ?? DEFAULT_REPLAY_OPTIONS.maxEventsPerDelivery,
      },
      {
        store: context.store,
        ...chunks,
        deliver,
        pacer,
        deadline,
        now,
        ...(deps.sleep ? { sleep: deps.sleep } : {}),
        onPushed: (count) => deps.onProgress?.({ pushed: count }),
        streams: { budget: streamBudget, eventLabels },
      },
    );
  const branch = { runId: event.runId, holder: event.unit.unitId, concurrency };
  const env = context.settings.env(options.loki);
  return withBranchStreamBudget(env, branch, context.store, deps, replay).finally(() =>
    groupMetrics?.publish(),
  );
}

/** The shared pacer of a local run, or (in AWS) this branch's share of the request's byte rate. */
function replayPacer(
  deps: WorkflowDeps,
  options: ReplayChunksEvent["options"],
  concurrency: number,
  desiredRateBytes: number,
): Pacer {
  const defaults = defaultPacing(desiredRateBytes);
  return (
    deps.sharedPacer ??
    new Pacer({
      bytesPerSecond: options.bytesPerSecond ?? defaults.bytesPerSecond / concurrency,
      perStreamBytesPerSecond: options.perStreamBytesPerSecond ?? defaults.perStreamBytesPerSecond,
    })
  );
}

async function planReplayTask(context: TaskContext, event: PlanReplayEvent): Promise<ReplayPlanOutput> {
  const { deps, settings } = context;
  const request = parseReplayRequest(event.request);
  const target = settings.loki(request.loki);
  const runId = request.runId ?? event.executionName;
  if (!runId) throw new InputError("A replay needs a runId (the execution name is used when none is given)");
  return planReplay(request, runId, {
    store: context.store,
    now: context.now,
    lokiReady: async () => {
      if (deps.lokiReady) return deps.lokiReady(settings.env(request.loki));
      const authorization = await authorizationHeader(target);
      return checkLokiReady(target.pushUrl, {
        ...(target.tenant ? { "X-Scope-OrgID": target.tenant } : {}),
        ...(authorization ? { Authorization: authorization } : {}),
      });
    },
  });
}

async function finishRunTask(context: TaskContext, event: FinishRunEvent): Promise<RunReport> {
  if (event.run?.lockKey) await releaseLock(context.store, event.run.lockKey, event.runId);
  const skipped = event.run?.status && event.run.status !== "ready";
  const planned = event.kind === "backfill" && event.run?.dryRun === true;
  const report = await buildRunReport(
    context.store,
    {
      runId: event.runId,
      kind: event.kind,
      ...(event.run?.startedAt ? { startedAt: event.run.startedAt } : {}),
      ...(event.startedAt ? { startedAt: event.startedAt } : {}),
      ...(skipped ? { status: "skipped" as const } : {}),
      ...(planned
        ? {
            status: "planned" as const,
            message: plannedMessage(event.run),
          }
        : {}),
      ...(event.run?.message ? { message: event.run.message } : {}),
      ...(event.status ? { status: event.status } : {}),
      ...(event.message ? { message: event.message } : {}),
      ...(event.error ? { error: event.error } : {}),
    },
    context.now(),
    context.deps.env,
  );
  return withinPayloadLimit(report);
}

/** A dry run's report message: what was planned and the plan's estimate. */
function plannedMessage(run: FinishRunEvent["run"]): string {
  const planned = `dry run: ${run?.sliceCount ?? 0} slice(s) planned, nothing exported`;
  return run?.estimate ? `${planned}; ${run.estimate}` : planned;
}

/**
 * Runs a replay invocation within the stream budget: the shared one of a local run, or (in AWS)
 * one of the run's `concurrency` lanes of it, kept in S3 between invocations (stream-lanes.ts).
 */
function withBranchStreamBudget<T>(
  env: Record<string, string | undefined>,
  branch: { runId: string; holder: string; concurrency: number },
  store: Store,
  deps: Pick<WorkflowDeps, "now" | "sleep" | "logger" | "sharedStreamBudget">,
  work: (budget: StreamBudget) => Promise<T>,
): Promise<T> {
  if (deps.sharedStreamBudget) return work(deps.sharedStreamBudget);
  const settings = parseStreamBudgetSettings(env);
  return withStreamLane(
    {
      store,
      runId: branch.runId,
      holder: branch.holder,
      lanes: branch.concurrency,
      perLane: perBranchStreams(settings, branch.concurrency),
      holdMs: streamHoldMs(settings),
      now: deps.now ?? Date.now,
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
      ...(deps.logger ? { logger: deps.logger } : {}),
    },
    work,
  );
}

/** The whole run's stream budget, shared by every branch of a local run. */
export function runStreamBudget(
  env: Record<string, string | undefined>,
  deps: Pick<WorkflowDeps, "now" | "sleep"> = {},
): StreamBudget {
  const settings = parseStreamBudgetSettings(env);
  return new StreamBudget(perBranchStreams(settings, 1), streamHoldMs(settings), {
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });
}

/** deliverEvents for the chunks of one replay unit, recording its log group's metrics when asked to. */
function unitDelivery(
  deps: WorkflowDeps,
  unit: {
    loki: LokiPushClient;
    /** The allow list, checked again for every chunk's tenant. */
    tenants: TenantRouting;
    runId: string;
    eventLabels: EventLabelOptions;
    now: () => number;
    groupMetrics: GroupMetrics | undefined;
  },
): DeliverBatch {
  const { groupMetrics } = unit;
  return async (batch, deadline) => {
    const report = await deliverEvents([{ eventLabels: unit.eventLabels, ...batch }], {
      loki: unit.loki,
      tenants: unit.tenants,
      s3: deps.s3,
      bucket: deps.bucket,
      deadline,
      runId: unit.runId,
      now: unit.now,
      ...(deps.logger ? { logger: deps.logger } : {}),
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
      ...(groupMetrics ? { onAccepted: (push) => groupMetrics.accepted(push) } : {}),
    });
    groupMetrics?.delivered(report);
    return report;
  };
}

/** Step Functions outputs are limited to 256 KiB: a report over many groups keeps them in S3 only. */
const MAX_OUTPUT_BYTES = 200 * 1024;

export function withinPayloadLimit(report: RunReport): RunReport {
  if (Buffer.byteLength(JSON.stringify(report)) <= MAX_OUTPUT_BYTES) return report;
  return {
    ...report,
    groups: [],
    message: [report.message, `${report.groups.length} groups: per-group counts in s3 ${report.reportKey}`]
      .filter(Boolean)
      .join("; "),
  };
}
