import * as z from "zod/mini";
import { ConfigError } from "../errors.ts";
import { configErrorFrom, emptyToUndefined } from "../labels/labels.ts";
import { durationText } from "../loki/loki-target.ts";
import "../mini-schema.ts";

/**
 * Loki refuses a new stream beyond the tenant's `max_global_streams_per_user` (5,000 by default)
 * with 429 "Maximum active stream limit exceeded", and a stream stays active until it has been idle
 * for the ingester's `chunk_idle_period` (30 min by default) and its chunks are flushed
 * (https://grafana.com/docs/loki/latest/configure/#limits_config). A backfill opens one stream per
 * log group and hour, so a budget lets it (and a replay) open a new hour stream only while its
 * share of the limit has room, and leaves the rest to live shipping.
 */
export interface StreamBudgetSettings {
  /** The tenant's `max_global_streams_per_user`. */
  maxGlobalStreamsPerUser: number;
  /** The part of the limit a backfill or replay may hold (live shipping keeps the rest). */
  share: number;
  /** The ingester's `chunk_idle_period`. */
  chunkIdlePeriodMs: number;
  /** Added to the idle period: Loki checks for idle streams every `flush_check_period` (30 s) and then flushes them. */
  idleMarginMs: number;
}

export const DEFAULT_STREAM_BUDGET: StreamBudgetSettings = {
  maxGlobalStreamsPerUser: 5000,
  share: 0.5,
  chunkIdlePeriodMs: 30 * 60_000,
  idleMarginMs: 2 * 60_000,
};

const durationSetting = durationText("expected a duration such as 30m, 2m or 500ms");

const settingsSchema = z.object({
  LOKI_MAX_GLOBAL_STREAMS_PER_USER: z._default(
    z.coerce
      .number({ message: "expected a number" })
      .check(z.int("expected a whole number"), z.minimum(1, "must be at least 1")),
    DEFAULT_STREAM_BUDGET.maxGlobalStreamsPerUser,
  ),
  LOKI_BACKFILL_STREAM_SHARE: z._default(
    z.coerce
      .number({ message: "expected a number" })
      .check(z.gt(0, "must be above 0"), z.maximum(1, "must be at most 1 (the whole limit)")),
    DEFAULT_STREAM_BUDGET.share,
  ),
  LOKI_CHUNK_IDLE_PERIOD: z._default(durationSetting, DEFAULT_STREAM_BUDGET.chunkIdlePeriodMs),
  LOKI_STREAM_IDLE_MARGIN: z._default(durationSetting, DEFAULT_STREAM_BUDGET.idleMarginMs),
});

/** The stream budget's `LOKI_*` settings; throws one ConfigError naming every bad variable. */
export function parseStreamBudgetSettings(env: Record<string, string | undefined>): StreamBudgetSettings {
  const values = emptyToUndefined(env, Object.keys(settingsSchema.shape));
  const result = settingsSchema.safeParse(values);
  if (!result.success) throw configErrorFrom(result.error, env);
  const parsed = result.data;
  return {
    maxGlobalStreamsPerUser: parsed.LOKI_MAX_GLOBAL_STREAMS_PER_USER,
    share: parsed.LOKI_BACKFILL_STREAM_SHARE,
    chunkIdlePeriodMs: parsed.LOKI_CHUNK_IDLE_PERIOD,
    idleMarginMs: parsed.LOKI_STREAM_IDLE_MARGIN,
  };
}

/** How long a stream counts as active after its last push. */
export function streamHoldMs(settings: StreamBudgetSettings): number {
  return settings.chunkIdlePeriodMs + settings.idleMarginMs;
}

/**
 * The streams one of `branches` parallel workers may hold open: in AWS every branch is its own
 * Lambda, so each takes an equal part of the run's share (like the FilterLogEvents budget,
 * perBranchRate); a local run shares one budget object instead.
 */
export function perBranchStreams(settings: StreamBudgetSettings, branches: number): number {
  const runStreams = Math.floor(settings.maxGlobalStreamsPerUser * settings.share);
  const perBranch = Math.floor(runStreams / Math.max(1, branches));
  if (perBranch < 1) {
    throw new ConfigError(
      `The stream budget (${runStreams} of LOKI_MAX_GLOBAL_STREAMS_PER_USER=${settings.maxGlobalStreamsPerUser} × LOKI_BACKFILL_STREAM_SHARE=${settings.share}) leaves less than one stream to each of ${branches} branches: lower the concurrency or raise the share`,
    );
  }
  return perBranch;
}

/** What the budget made a caller wait for; `admitted` is false when the deadline came first. */
export interface StreamWait {
  admitted: boolean;
  waits: number;
  waitedMs: number;
}

/**
 * Stream keys of a tenant other than the default one, as the budget counts them: Loki's stream
 * limit is per tenant, so the same labels in two tenants are two streams, each in its own count.
 * (Tenant IDs and label sets hold no NUL character.)
 */
export function tenantStreamKeys(tenant: string | undefined, keys: Iterable<string>): Set<string> {
  const prefix = tenant ? `${tenant}\u0000` : "";
  return new Set([...keys].map((key) => `${prefix}${key}`));
}

function tenantOfKey(key: string): string {
  const end = key.indexOf("\u0000");
  return end < 0 ? "" : key.slice(0, end);
}

/**
 * The hour streams a backfill or replay has opened and not yet left idle for the hold time
 * (`chunk_idle_period` + margin), counted per tenant: `limit` holds for each tenant on its own
 * (keys from {@link tenantStreamKeys}). {@link admit} resolves once every stream of a push may be
 * pushed: streams already open are free, a new one needs room under its tenant's limit. Callers
 * are served in arrival order.
 */
export class StreamBudget {
  readonly limit: number;
  readonly holdMs: number;
  /** Stream key -> epoch ms of its last push (or of its admission). */
  readonly #lastPush = new Map<string, number>();
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    limit: number,
    holdMs: number,
    options: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    if (!(limit >= 1)) throw new RangeError(`a stream budget needs at least 1 stream, got ${limit}`);
    this.limit = limit;
    this.holdMs = holdMs;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** The open streams and their last push (epoch ms), to keep between invocations. */
  openStreams(): Record<string, number> {
    this.#forgetIdle();
    return Object.fromEntries(this.#lastPush);
  }

  /** Takes back streams an earlier invocation opened (from {@link openStreams}). */
  restore(openStreams: Record<string, number>): void {
    for (const [key, lastPush] of Object.entries(openStreams)) {
      this.#lastPush.set(key, Math.max(lastPush, this.#lastPush.get(key) ?? 0));
    }
    this.#forgetIdle();
  }

  /** Streams counted as active now. */
  active(): number {
    this.#forgetIdle();
    return this.#lastPush.size;
  }

  /**
   * Waits until the streams `keys` may be pushed and counts the new ones as open from now; gives
   * up (admitted: false) when there is no room by `deadline`.
   */
  admit(keys: Iterable<string>, deadline = Number.POSITIVE_INFINITY): Promise<StreamWait> {
    const wanted = [...new Set(keys)];
    // One push's streams are all of one tenant: its keys say which.
    const tenant = wanted[0] === undefined ? "" : tenantOfKey(wanted[0]);
    const turn = this.#queue.then(() => this.#waitFor(wanted, deadline, tenant));
    this.#queue = turn.catch(() => undefined);
    return turn;
  }

  /** Records a push to `keys`: each stays active for the hold time from now. */
  touch(keys: Iterable<string>): void {
    const now = this.#now();
    for (const key of keys) this.#lastPush.set(key, now);
  }

  async #waitFor(keys: string[], deadline: number, tenant: string): Promise<StreamWait> {
    const started = this.#now();
    let slept = false;
    const wait = (admitted: boolean): StreamWait =>
      slept ? { admitted, waits: 1, waitedMs: this.#now() - started } : { admitted, waits: 0, waitedMs: 0 };
    for (;;) {
      this.#forgetIdle();
      const fresh = keys.filter((key) => !this.#lastPush.has(key));
      // A push of more new streams than the whole budget waits for an empty budget, then goes.
      const needed = Math.min(fresh.length, this.limit);
      const open = this.#openOf(tenant);
      if (open.length + needed <= this.limit) {
        this.touch(fresh);
        return wait(true);
      }
      const now = this.#now();
      if (now >= deadline) return wait(false);
      const roomAt = Math.min(...open) + this.holdMs;
      await this.#sleep(Math.max(1, Math.min(roomAt, deadline) - now));
      slept = true;
    }
  }

  #forgetIdle(): void {
    const idleBefore = this.#now() - this.holdMs;
    for (const [key, lastPush] of this.#lastPush) if (lastPush <= idleBefore) this.#lastPush.delete(key);
  }

  /** The last pushes of the tenant's open streams. */
  #openOf(tenant: string): number[] {
    const open: number[] = [];
    for (const [key, lastPush] of this.#lastPush) if (tenantOfKey(key) === tenant) open.push(lastPush);
    return open;
  }
}
