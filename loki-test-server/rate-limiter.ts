/**
 * Token bucket with the semantics of golang.org/x/time/rate `AllowN`, which Loki's local
 * ingestion rate strategy uses: full at start, refilled at `ratePerSecond`, at most `burst`
 * tokens, and a request larger than the burst is never allowed.
 */
export class TokenBucket {
  #tokens: number;
  #updatedMs: number;
  ratePerSecond: number;
  burst: number;

  constructor(ratePerSecond: number, burst: number, nowMs = Date.now()) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#updatedMs = nowMs;
  }

  allow(n: number, nowMs = Date.now()): boolean {
    const elapsedMs = Math.max(0, nowMs - this.#updatedMs);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsedMs / 1000) * this.ratePerSecond);
    this.#updatedMs = nowMs;
    if (n > this.burst || n > this.#tokens) return false;
    this.#tokens -= n;
    return true;
  }

  /** Applies new limits, keeping the tokens already earned (capped at the new burst). */
  reconfigure(ratePerSecond: number, burst: number): void {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#tokens = Math.min(this.#tokens, burst);
  }
}
