/**
 * A token bucket: `take()` resolves when a request may go. CloudWatch Logs allows about 5
 * `FilterLogEvents` requests per second per account and region, shared with everything else there
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html), so every
 * branch of a backfill reading one account and region takes from one budget. In-process (local
 * runs) those branches share one bucket object ({@link AccountRateBudgets}); in AWS each branch is
 * its own Lambda, so each gets `budget / concurrency` (see {@link perBranchRate}): however the
 * branches spread over accounts, no account gets more than the budget.
 */
export class RateBudget {
  readonly ratePerSecond: number;
  readonly burst: number;
  private tokens: number;
  private updatedAt: number;
  private queue: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    ratePerSecond: number,
    options: { burst?: number; now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
  ) {
    if (!(ratePerSecond > 0)) throw new RangeError(`rate must be above 0, got ${ratePerSecond}`);
    this.ratePerSecond = ratePerSecond;
    this.burst = options.burst ?? Math.max(1, ratePerSecond);
    this.tokens = this.burst;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.updatedAt = this.now();
  }

  /** Waits for `cost` tokens; callers are served in arrival order. */
  take(cost = 1): Promise<void> {
    const turn = this.queue.then(() => this.waitFor(cost));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /** Empties the bucket, e.g. after a throttling answer: the budget was overdrawn elsewhere. */
  drain(): void {
    this.refill();
    this.tokens = Math.min(this.tokens, 0);
  }

  private async waitFor(cost: number): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens >= cost || (this.tokens >= this.burst && cost > this.burst)) {
        this.tokens -= cost;
        return;
      }
      const missing = Math.min(cost, this.burst) - this.tokens;
      await this.sleep(Math.max(1, Math.ceil((missing / this.ratePerSecond) * 1000)));
    }
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSecond);
    this.updatedAt = now;
  }
}

/** The share of an account-wide request budget one of `concurrency` parallel Lambdas may use. */
export function perBranchRate(requestsPerSecond: number, concurrency: number): number {
  return requestsPerSecond / Math.max(1, concurrency);
}

/**
 * One {@link RateBudget} per account and region, made on first use: CloudWatch Logs' quotas hold
 * per account and region, so the groups of two accounts never wait for each other, and the groups
 * of one account share its budget.
 */
export class AccountRateBudgets {
  readonly #budgets = new Map<string, RateBudget>();
  readonly #create: () => RateBudget;

  constructor(create: () => RateBudget) {
    this.#create = create;
  }

  /** The budget of an account and region (both absent: the functions' own, in runs of earlier versions). */
  of(account: string | undefined, region: string | undefined): RateBudget {
    const key = `${account ?? "home"}/${region ?? "home"}`;
    let budget = this.#budgets.get(key);
    if (!budget) {
      budget = this.#create();
      this.#budgets.set(key, budget);
    }
    return budget;
  }
}
