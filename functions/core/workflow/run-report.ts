import { addDropped } from "../delivery/rules.ts";
import {
  parseStreamBudgetSettings,
  type StreamBudgetSettings,
  streamHoldMs,
} from "../delivery/stream-budget.ts";
import { describeGroup, type GroupRef, groupKeySegment } from "../storage/chunk-format.ts";
import { getJson, listKeys, putJson, runKeys, type Store } from "../storage/run-store.ts";
import { type BackfillPlan, refusedTenantsNote } from "./backfill-plan.ts";
import type { ReplayCheckpoint } from "./replay-engine.ts";
import { type ExportCheckpoint, groupRefOf } from "./slice-export.ts";

/** What a run did, per log group: written to `runs/<runId>/report.json` and returned by the workflow. */
export interface GroupReport extends GroupRef {
  /** The Loki tenant the group's tenant tag chose (absent: the default tenant, LOKI_TENANT). */
  tenant?: string;
  /** Events read from CloudWatch into chunks (backfill). */
  exported: number;
  /** Events a drop rule kept out of the export, keyed "rule N" (not in `exported`, not in S3). */
  dropped: Record<string, number>;
  /** Events read from chunks and handed to Loki (replay). */
  received: number;
  pushed: number;
  refused: Record<string, number>;
  spilled: number;
  /** The part of `spilled` Loki refused for the tenant's active-stream limit ("refused: stream limit"). */
  streamLimited: number;
  /** Chunks that waited for room in the run's stream budget before their push, and how long in all. */
  streamWaits: number;
  streamWaitMs: number;
  /** Events in spill/ refused for the stream limit that a drain left there until `heldUntil`. */
  held: number;
  heldUntil?: string;
  /** Push attempts repeated after 429, 5xx or network errors. */
  retries: number;
  /** Compressed chunk bytes written (backfill) plus bytes pushed to Loki. */
  chunkBytes: number;
  pushedBytes: number;
  slices: number;
  pages: number;
  throttled: number;
  durationMs: number;
  /** Events per second over `durationMs` (exported for a backfill, pushed for a replay). */
  eventsPerSecond: number;
}

export interface RunReport {
  runId: string;
  kind: "backfill" | "replay";
  /**
   * `partial`: the run finished but left events in spill/ or rejected/ (counts and hints say which
   * and what to do); `incomplete`: a part did not finish (resume with the same runId).
   */
  status: "succeeded" | "partial" | "incomplete" | "planned" | "skipped" | "failed";
  message?: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  groups: GroupReport[];
  totals: Omit<GroupReport, keyof GroupRef>;
  /** What the operator can do about refused or kept events. */
  hints: string[];
  reportKey: string;
}

export interface FinishInput {
  runId: string;
  kind: "backfill" | "replay";
  startedAt?: string;
  /** A replay that did not run (Loki not ready, lock held) or a failure caught by the workflow. */
  status?: RunReport["status"];
  message?: string;
  error?: { Error?: string; Cause?: string };
}

/** Adds up the run's checkpoints into the report and stores it. */
export async function buildRunReport(
  store: Store,
  input: FinishInput,
  now: number,
  /** The `LOKI_*` settings of the function (a run's `loki` overrides them), for the hints. */
  env: Record<string, string | undefined> = {},
): Promise<RunReport> {
  const { runId } = input;
  const plan = await getJson<BackfillPlan & { createdAt: string }>(store, runKeys.plan(runId));
  const startedAt = input.startedAt ?? plan?.createdAt ?? new Date(now).toISOString();
  const tally = await tallyCheckpoints(store, input, plan);
  const groupReports = tally.reports(input.kind);
  const totals = sumGroups(groupReports);
  const finishedAt = new Date(now).toISOString();
  const durationMs = Math.max(0, now - Date.parse(startedAt));
  totals.durationMs = durationMs;
  totals.eventsPerSecond =
    durationMs > 0
      ? round(((input.kind === "backfill" ? totals.exported : totals.pushed) * 1000) / durationMs)
      : 0;
  const status = runStatus(input, totals, tally.incomplete > 0 || tally.stopped.length > 0);
  const messages = runMessages(input, plan, tally.stopped);
  const report: RunReport = {
    runId,
    kind: input.kind,
    status,
    ...(messages.length > 0 ? { message: messages.join("; ") } : {}),
    startedAt,
    finishedAt,
    durationMs,
    groups: groupReports,
    totals,
    hints: hintsFor(totals, {
      settings: parseStreamBudgetSettings({
        ...env,
        ...(plan?.request as { loki?: Record<string, string> })?.loki,
      }),
      now,
    }),
    reportKey: runKeys.report(runId),
  };
  await putJson(store, runKeys.report(runId), report);
  return report;
}

/** Every export and replay checkpoint of the run, added up per log group. */
async function tallyCheckpoints(
  store: Store,
  input: FinishInput,
  plan: BackfillPlan | undefined,
): Promise<GroupTally> {
  const tally = new GroupTally();
  // A planned group with nothing exported still gets its (zero) line in a backfill's report.
  if (input.kind === "backfill")
    for (const planned of plan?.groups ?? []) tally.groupOf(planned, planned.tenant);
  for (const key of await listKeys(store, runKeys.exportCheckpoints(input.runId))) {
    const checkpoint = await getJson<ExportCheckpoint>(store, key);
    if (checkpoint) tally.addExport(checkpoint);
  }
  for (const key of await listKeys(store, runKeys.replayCheckpoints(input.runId))) {
    const checkpoint = await getJson<ReplayCheckpoint>(store, key);
    if (checkpoint) tally.addReplay(checkpoint);
  }
  return tally;
}

/**
 * The report's message parts: the caller's, a range cut short, groups whose tenant is not allowed,
 * the error, and why replays stopped.
 */
function runMessages(input: FinishInput, plan: BackfillPlan | undefined, stopped: string[]): string[] {
  const request = plan?.request;
  const cutShort =
    input.kind === "backfill" && request && request.endMs < request.requestedEndMs
      ? `the range ends at ${new Date(request.endMs).toISOString()} instead of ${new Date(request.requestedEndMs).toISOString()}: CloudWatch can show events minutes after their timestamp, so the last ${Math.round(request.ingestionDelayMs / 1000)} s are left to the live shipper (or a later run)`
      : undefined;
  const refusedTenants =
    input.kind === "backfill" && plan
      ? refusedTenantsNote(plan.groups, plan.request.includeRefusedTenants === true)
      : undefined;
  return [
    input.message,
    cutShort,
    refusedTenants,
    input.error ? `${input.error.Error ?? "Error"}: ${input.error.Cause ?? ""}` : undefined,
    ...stopped,
  ].filter((text): text is string => Boolean(text));
}

/** Per log group counts of a run, and the time span its checkpoints cover. */
class GroupTally {
  readonly #groups = new Map<string, GroupReport & { firstMs: number; lastMs: number }>();
  /** Checkpoints not done: the run did not finish them. */
  incomplete = 0;
  /** Why replays stopped early, one line per checkpoint. */
  readonly stopped: string[] = [];

  /** The counts of a group, by name, account and region: the same name in two accounts is two groups. */
  groupOf(ref: GroupRef, tenant?: string) {
    const key = groupKeySegment(ref);
    let group = this.#groups.get(key);
    if (!group) {
      group = { ...groupRefOf(ref), ...zeroCounts(), firstMs: Number.POSITIVE_INFINITY, lastMs: 0 };
      this.#groups.set(key, group);
    }
    if (tenant) group.tenant = tenant;
    return group;
  }

  addExport(checkpoint: ExportCheckpoint): void {
    const group = this.groupOf(checkpoint);
    group.exported += checkpoint.events;
    addDropped(group.dropped, checkpoint.dropped ?? {});
    group.chunkBytes += checkpoint.bytes;
    group.slices += 1;
    group.pages += checkpoint.pages;
    group.throttled += checkpoint.throttled;
    if (!checkpoint.done) this.incomplete += 1;
    this.#span(group, checkpoint.startedAt, checkpoint.updatedAt);
  }

  addReplay(checkpoint: ReplayCheckpoint): void {
    const group = this.groupOf(checkpoint, checkpoint.tenant);
    addReplayCounts(group, { ...checkpoint, pushedBytes: checkpoint.bytes });
    if (!checkpoint.done) this.incomplete += 1;
    if (checkpoint.stoppedBecause)
      this.stopped.push(`${describeGroup(checkpoint)}: ${checkpoint.stoppedBecause}`);
    this.#span(group, checkpoint.startedAt, checkpoint.updatedAt);
  }

  /** One report per group, by name; the rate counts exported events for a backfill, pushed for a replay. */
  reports(kind: FinishInput["kind"]): GroupReport[] {
    return [...this.#groups.values()]
      .sort(
        (a, b) => a.logGroup.localeCompare(b.logGroup) || (a.account ?? "").localeCompare(b.account ?? ""),
      )
      .map(({ firstMs, lastMs, ...group }) => {
        const durationMs = Number.isFinite(firstMs) ? Math.max(0, lastMs - firstMs) : 0;
        const events = kind === "backfill" ? group.exported : group.pushed;
        return {
          ...group,
          durationMs,
          eventsPerSecond: durationMs > 0 ? round((events * 1000) / durationMs) : 0,
        };
      });
  }

  #span(group: { firstMs: number; lastMs: number }, from: string, to: string): void {
    group.firstMs = Math.min(group.firstMs, Date.parse(from));
    group.lastMs = Math.max(group.lastMs, Date.parse(to));
  }
}

function zeroCounts(): Omit<GroupReport, keyof GroupRef> {
  return {
    exported: 0,
    dropped: {},
    received: 0,
    pushed: 0,
    refused: {},
    spilled: 0,
    streamLimited: 0,
    streamWaits: 0,
    streamWaitMs: 0,
    held: 0,
    retries: 0,
    chunkBytes: 0,
    pushedBytes: 0,
    slices: 0,
    pages: 0,
    throttled: 0,
    durationMs: 0,
    eventsPerSecond: 0,
  };
}

function sumGroups(groups: GroupReport[]): Omit<GroupReport, keyof GroupRef> {
  const totals = zeroCounts();
  for (const group of groups) {
    totals.exported += group.exported;
    addDropped(totals.dropped, group.dropped);
    addReplayCounts(totals, group);
    totals.chunkBytes += group.chunkBytes;
    totals.slices += group.slices;
    totals.pages += group.pages;
    totals.throttled += group.throttled;
  }
  return totals;
}

/** The counts a replay adds up: from its checkpoints into a group, and from the groups into the totals. */
type ReplayCounts = Pick<
  GroupReport,
  "received" | "pushed" | "spilled" | "retries" | "pushedBytes" | "refused"
>;

function addReplayCounts(into: ReplayCounts & StreamCounts, add: ReplayCounts & Partial<StreamCounts>): void {
  into.received += add.received;
  into.pushed += add.pushed;
  into.spilled += add.spilled;
  addStreamCounts(into, add);
  into.retries += add.retries;
  into.pushedBytes += add.pushedBytes;
  for (const [reason, count] of Object.entries(add.refused))
    into.refused[reason] = (into.refused[reason] ?? 0) + count;
}

type StreamCounts = Pick<
  GroupReport,
  "streamLimited" | "streamWaits" | "streamWaitMs" | "held" | "heldUntil"
>;

function addStreamCounts(into: StreamCounts, add: Partial<StreamCounts>): void {
  into.streamLimited += add.streamLimited ?? 0;
  into.streamWaits += add.streamWaits ?? 0;
  into.streamWaitMs += add.streamWaitMs ?? 0;
  into.held += add.held ?? 0;
  if (add.heldUntil && (!into.heldUntil || add.heldUntil > into.heldUntil)) into.heldUntil = add.heldUntil;
}

/**
 * A run that finished but left events in spill/ or rejected/ is `partial`, not `succeeded`: they
 * are safe in S3, but not in Loki yet.
 */
function runStatus(
  input: FinishInput,
  totals: Omit<GroupReport, keyof GroupRef>,
  unfinished: boolean,
): RunReport["status"] {
  if (input.error) return "failed";
  const status = input.status ?? "succeeded";
  if (status !== "succeeded") return status;
  if (unfinished) return "incomplete";
  const refused = Object.values(totals.refused).reduce((sum, count) => sum + count, 0);
  return totals.spilled > 0 || totals.held > 0 || refused > 0 ? "partial" : "succeeded";
}

const REPLAY_SPILL = 'replay with {"source":"spill"} (loki-shipper replay --source spill)';

/** Tells the operator which Loki setting refused events and how to bring them in afterwards. */
export function hintsFor(
  totals: Pick<GroupReport, "refused" | "spilled"> & Partial<StreamCounts>,
  stream: { settings: StreamBudgetSettings; now: number },
): string[] {
  const hints: string[] = [];
  for (const [reason, count] of Object.entries(totals.refused)) {
    if (reason === "tenant_not_allowed") {
      hints.push(
        `${count} event(s) not sent: their log group's tenant tag (LABEL_TENANT_TAG) names a tenant outside LOKI_TENANTS_ALLOWED (each rejected/ chunk names it; the groups above show which). They went to no tenant: add the tenant to LOKI_TENANTS_ALLOWED or fix the tag, then replay with {"source":"rejected"}`,
      );
    } else if (/too_old|too old|reject_old/i.test(reason)) {
      hints.push(
        `${count} event(s) refused as too old (${reason}): raise Loki's limits_config.reject_old_samples_max_age (and LOKI_REJECT_OLD_SAMPLES_MAX_AGE of the shipper) above their age, then replay with {"source":"rejected"}`,
      );
    } else if (/too_new|too new|creation_grace/i.test(reason)) {
      hints.push(
        `${count} event(s) refused as too new (${reason}): check the clocks, or raise limits_config.creation_grace_period, then replay with {"source":"rejected"}`,
      );
    } else if (/line_too_long|line too long|max_line_size/i.test(reason)) {
      hints.push(
        `${count} event(s) refused as too long (${reason}): raise limits_config.max_line_size (or set max_line_size_truncate), then replay with {"source":"rejected"}`,
      );
    } else {
      hints.push(
        `${count} event(s) refused: ${reason}; they are kept under rejected/ and can be replayed with {"source":"rejected"}`,
      );
    }
  }
  const streamLimited = totals.streamLimited ?? 0;
  if (streamLimited > 0) hints.push(streamLimitHint(streamLimited, stream.settings, stream.now));
  if ((totals.held ?? 0) > 0) {
    hints.push(
      `${totals.held} event(s) refused earlier for the stream limit wait under spill/ until ${totals.heldUntil}, when the streams that filled the tenant have been idle for chunk_idle_period (LOKI_CHUNK_IDLE_PERIOD): the scheduled drain takes them after that, or ${REPLAY_SPILL}`,
    );
  }
  const otherSpilled = totals.spilled - streamLimited;
  if (otherSpilled > 0) {
    hints.push(
      `${otherSpilled} event(s) could not be delivered and wait under spill/: ${REPLAY_SPILL} once Loki is back`,
    );
  }
  return hints;
}

/** "refused: stream limit": which Loki settings, when the events can go in, and the command. */
function streamLimitHint(count: number, settings: StreamBudgetSettings, now: number): string {
  const after = new Date(now + streamHoldMs(settings)).toISOString();
  return (
    `${count} event(s) refused: stream limit. Loki refuses a new stream while the tenant has max_global_streams_per_user active streams, ` +
    `and a stream stays active until idle for chunk_idle_period (this run counted LOKI_MAX_GLOBAL_STREAMS_PER_USER=${settings.maxGlobalStreamsPerUser}, ` +
    `LOKI_BACKFILL_STREAM_SHARE=${settings.share}, LOKI_CHUNK_IDLE_PERIOD=${settings.chunkIdlePeriodMs / 60_000}m). ` +
    `They wait under spill/ and can go in after ${after}: the scheduled drain takes them then, or ${REPLAY_SPILL}. ` +
    "If Loki's max_global_streams_per_user is lower than LOKI_MAX_GLOBAL_STREAMS_PER_USER, set the variable to Loki's value, or raise the limit in Loki's limits_config"
  );
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
