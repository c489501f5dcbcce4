/**
 * A per-container cache of AWS look-ups (log group tags, Lambda function facts): a busy shipper
 * would otherwise call the control-plane API for every batch and hit its quota. A found value is
 * kept for `ttlMs`; "does not exist" for the shorter `negativeTtlMs`, so a deleted resource costs
 * one call a minute, and a recreated one is seen soon.
 */
export interface LookupCacheOptions {
  /** How long a found value is used before it is looked up again. */
  ttlMs: number;
  /** How long "no such resource" is remembered (negative caching). */
  negativeTtlMs: number;
}

export const DEFAULT_LOOKUP_CACHE_OPTIONS: LookupCacheOptions = { ttlMs: 5 * 60_000, negativeTtlMs: 60_000 };

export interface LookupCacheEntry<Value> {
  value: Value;
  expiresAt: number;
  found: boolean;
}

export class LookupCache<Value> {
  readonly #entries = new Map<string, LookupCacheEntry<Value>>();
  readonly options: LookupCacheOptions;
  readonly #now: () => number;

  constructor(options: Partial<LookupCacheOptions> = {}, now: () => number = Date.now) {
    this.options = { ...DEFAULT_LOOKUP_CACHE_OPTIONS, ...options };
    this.#now = now;
  }

  get(key: string): LookupCacheEntry<Value> | undefined {
    const entry = this.#entries.get(key);
    return entry && entry.expiresAt > this.#now() ? entry : undefined;
  }

  /** An expired entry, used when a fresh lookup fails rather than shipping with other labels. */
  stale(key: string): LookupCacheEntry<Value> | undefined {
    return this.#entries.get(key);
  }

  set(key: string, value: Value, found: boolean): void {
    const ttl = found ? this.options.ttlMs : this.options.negativeTtlMs;
    this.#entries.set(key, { value, found, expiresAt: this.#now() + ttl });
  }

  clear(): void {
    this.#entries.clear();
  }
}
