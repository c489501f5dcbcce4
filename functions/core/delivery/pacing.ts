import { RateBudget } from "../cloudwatch/rate-budget.ts";

/**
 * Paces pushes to a Loki tenant's limits: Loki refuses a whole request with 429 when the tenant
 * goes over `ingestion_rate_mb` (default 4 MB/s, burst 6) or a stream over `per_stream_rate_limit`
 * (default 3 MB/s), counting line bytes
 * (https://grafana.com/docs/loki/latest/configure/#limits_config). A replay stays below both, so
 * that live shipping keeps room and the replay does not spend its time in retries.
 */
export interface PacingLimits {
  bytesPerSecond: number;
  perStreamBytesPerSecond: number;
}

/**
 * Below Loki's defaults, leaving room for live traffic. A stream's pace is also kept to half the
 * tenant's `shard_streams.desired_rate` (1536KB by default): Loki shards a stream whose rate plus
 * the push is over it, and the pieces of a replay are a second of the pace.
 */
export const DEFAULT_PACING: PacingLimits = {
  bytesPerSecond: 2 * 1024 * 1024,
  perStreamBytesPerSecond: 768 * 1024,
};

/** The default pacing for a tenant whose `shard_streams.desired_rate` is `desiredRateBytes`. */
export function defaultPacing(desiredRateBytes: number): PacingLimits {
  return {
    ...DEFAULT_PACING,
    perStreamBytesPerSecond: Math.min(
      DEFAULT_PACING.perStreamBytesPerSecond,
      Math.floor(desiredRateBytes / 2),
    ),
  };
}

/** Paces each tenant on its own: Loki's rate limits are per tenant (the default tenant is ""). */
export class Pacer {
  readonly limits: PacingLimits;
  private readonly overall = new Map<string, RateBudget>();
  private readonly streams = new Map<string, RateBudget>();
  private readonly options: { now?: () => number; sleep?: (ms: number) => Promise<void> };

  constructor(
    limits: PacingLimits,
    options: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    this.limits = limits;
    this.options = options;
  }

  /** Waits until `bytesByStream` (line bytes per stream key) may be pushed to `tenant`. */
  async take(bytesByStream: Map<string, number>, tenant = ""): Promise<void> {
    let total = 0;
    for (const [stream, bytes] of bytesByStream) {
      total += bytes;
      await this.#budget(this.streams, `${tenant}\u0000${stream}`, this.limits.perStreamBytesPerSecond).take(
        bytes,
      );
    }
    if (total > 0) await this.#budget(this.overall, tenant, this.limits.bytesPerSecond).take(total);
  }

  #budget(budgets: Map<string, RateBudget>, key: string, bytesPerSecond: number): RateBudget {
    let budget = budgets.get(key);
    if (!budget) {
      budget = new RateBudget(bytesPerSecond, { burst: bytesPerSecond, ...this.options });
      budgets.set(key, budget);
    }
    return budget;
  }
}
