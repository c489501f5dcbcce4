import { type StreamBudgetSettings, streamHoldMs } from "../delivery/stream-budget.ts";
import type { SliceTask } from "./backfill-plan.ts";

const HOUR_MS = 3_600_000;

/** What a plan costs before it runs: the streams it opens and the time its two budgets impose. */
export interface PlanEstimate {
  /** One Loki stream per log group and UTC hour (time_shard) the plan covers. */
  hourStreams: number;
  /** The streams the run may hold open at once (its share of max_global_streams_per_user). */
  streamBudget: number;
  /** The least time the stream budget alone implies: each round of streams stays open until idle. */
  streamBoundMs: number;
  /** The least time the FilterLogEvents budget implies: one request per slice (busy slices page more). */
  paceBoundMs: number;
}

/**
 * A backfill opens `hourStreams` streams, at most `streamBudget` at a time, and a stream counts
 * against Loki's limit until it has been idle for chunk_idle_period (plus a margin) after its last
 * push. So the streams go in rounds: the last round can start no sooner than
 * (rounds − 1) × hold time after the first.
 */
export function estimatePlan(
  slices: SliceTask[],
  settings: StreamBudgetSettings,
  requestsPerSecond: number,
): PlanEstimate {
  let hourStreams = 0;
  for (const slice of slices)
    hourStreams += Math.ceil(slice.endMs / HOUR_MS) - Math.floor(slice.startMs / HOUR_MS);
  const streamBudget = Math.max(1, Math.floor(settings.maxGlobalStreamsPerUser * settings.share));
  const rounds = Math.ceil(hourStreams / streamBudget);
  return {
    hourStreams,
    streamBudget,
    streamBoundMs: Math.max(0, rounds - 1) * streamHoldMs(settings),
    paceBoundMs: Math.round((slices.length / requestsPerSecond) * 1000),
  };
}

/** The estimate as the dry run's report says it. */
export function describeEstimate(estimate: PlanEstimate, settings: StreamBudgetSettings): string {
  const streamBound =
    estimate.streamBoundMs > 0
      ? `the stream budget alone makes the run take at least ${formatDuration(estimate.streamBoundMs)}`
      : "the stream budget holds them all at once";
  return (
    `${estimate.hourStreams} hour stream(s) to open, at most ${estimate.streamBudget} at a time ` +
    `(LOKI_MAX_GLOBAL_STREAMS_PER_USER=${settings.maxGlobalStreamsPerUser} × LOKI_BACKFILL_STREAM_SHARE=${settings.share}, ` +
    `each open until idle for LOKI_CHUNK_IDLE_PERIOD=${formatDuration(settings.chunkIdlePeriodMs)} + ${formatDuration(settings.idleMarginMs)}): ` +
    `${streamBound}; the FilterLogEvents pace at least ${formatDuration(estimate.paceBoundMs)}` +
    (estimate.streamBoundMs > estimate.paceBoundMs
      ? "; the stream limit bounds this run: raise max_global_streams_per_user in Loki (and LOKI_MAX_GLOBAL_STREAMS_PER_USER) to make it faster"
      : "")
  );
}

/** "7 h 35 min", "12 min", "40 s", "500 ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
}
