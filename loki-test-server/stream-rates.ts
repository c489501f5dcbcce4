/**
 * Stream rates as Loki 3.4's distributor sees them when it shards streams.
 *
 * - The ingester (`StreamRateCalculator`) counts the bytes and the pushes of every stream, each
 *   shard apart, over one-second windows, and keeps only the last closed window.
 * - The distributor's rate store (`rateStore`, `distributor.rate_store.stream_rate_update_interval`
 *   1s) fetches that window about every second, adds a stream's shards up (bytes summed, pushes of
 *   the busiest shard) and smooths the result into what it had: 0.4 × new + 0.6 × old, bytes
 *   truncated to an integer; a stream missing from the window decays to 0.6 × old; a stream not
 *   seen for 10 minutes is forgotten. A stream the store has never seen has rate 0 and 0 pushes.
 *
 * Here both sides tick together, every `tickMs` (1s): a window's counts reach the rate at the
 * tick that closes it, where Loki needs up to one more refresh (~1s, with 20% jitter). Each stream
 * is brought up to date when it is read or recorded, so idle streams cost nothing.
 */

/** What `rateStore.RateFor` returns: smoothed bytes per second and pushes per window. */
export interface StreamRate {
  bytesPerSecond: number;
  pushes: number;
}

export interface StreamRatesOptions {
  /** The clock (ms), for tests. */
  nowMs?: () => number;
  /** Ingester window and rate store refresh period (Loki: 1s both). */
  tickMs?: number;
}

/** `smoothingFactor` of Loki's rate store: weight of the newest window. */
const SMOOTHING = 0.4;
/** `rateKeepAlive`: a stream not seen this long leaves the rate store. */
const KEEP_ALIVE_MS = 10 * 60_000;

interface WindowCount {
  bytes: number;
  pushes: number;
}

interface TrackedStream {
  /** Tick of the window now being counted. */
  windowTick: number;
  /** Counts of the open window, by shard (the ingester's streams). */
  window: Map<string, WindowCount>;
  /** The rate store's view; undefined while it has not seen the stream (or forgot it). */
  rate: (StreamRate & { seenTick: number }) | undefined;
}

function smoothed(next: number, last: number): number {
  return SMOOTHING * next + (1 - SMOOTHING) * last;
}

export class StreamRates {
  readonly #nowMs: () => number;
  readonly #tickMs: number;
  readonly #keepAliveTicks: number;
  readonly #streams = new Map<string, TrackedStream>();
  #lastSweepTick = 0;

  constructor(options: StreamRatesOptions = {}) {
    this.#nowMs = options.nowMs ?? Date.now;
    this.#tickMs = options.tickMs ?? 1000;
    this.#keepAliveTicks = Math.ceil(KEEP_ALIVE_MS / this.#tickMs);
  }

  /**
   * The ingester's `Record`: one push of `bytes` to `shard` (the stored stream's labels) of
   * `stream` (its labels without the shard label).
   */
  record(tenant: string, stream: string, shard: string, bytes: number): void {
    const tick = this.#tick();
    const key = `${tenant}\u0000${stream}`;
    let tracked = this.#streams.get(key);
    if (tracked) this.#advance(tracked, tick);
    else {
      tracked = { windowTick: tick, window: new Map(), rate: undefined };
      this.#streams.set(key, tracked);
    }
    const count = tracked.window.get(shard);
    if (count) {
      count.bytes += bytes;
      count.pushes++;
    } else tracked.window.set(shard, { bytes, pushes: 1 });
    this.#sweep(tick);
  }

  /** The rate store's `RateFor`: `{0, 0}` for a stream it has not seen. */
  rateFor(tenant: string, stream: string): StreamRate {
    const tracked = this.#streams.get(`${tenant}\u0000${stream}`);
    if (!tracked) return { bytesPerSecond: 0, pushes: 0 };
    this.#advance(tracked, this.#tick());
    return tracked.rate
      ? { bytesPerSecond: tracked.rate.bytesPerSecond, pushes: tracked.rate.pushes }
      : { bytesPerSecond: 0, pushes: 0 };
  }

  #tick(): number {
    return Math.floor(this.#nowMs() / this.#tickMs);
  }

  /** Runs the refreshes between the stream's open window and `tick`. */
  #advance(tracked: TrackedStream, tick: number): void {
    if (tick <= tracked.windowTick) return;
    let refresh = tracked.windowTick + 1;
    if (tracked.window.size > 0) {
      let bytes = 0;
      let pushes = 0;
      for (const count of tracked.window.values()) {
        bytes += count.bytes;
        pushes = Math.max(pushes, count.pushes);
      }
      const old = tracked.rate;
      tracked.rate = old
        ? {
            bytesPerSecond: Math.trunc(smoothed(bytes, old.bytesPerSecond)),
            pushes: smoothed(pushes, old.pushes),
            seenTick: refresh,
          }
        : { bytesPerSecond: bytes, pushes, seenTick: refresh };
      tracked.window = new Map();
      refresh++;
    }
    for (; refresh <= tick && tracked.rate; refresh++) {
      if (refresh - tracked.rate.seenTick > this.#keepAliveTicks) tracked.rate = undefined;
      else {
        tracked.rate.bytesPerSecond = Math.trunc(smoothed(0, tracked.rate.bytesPerSecond));
        tracked.rate.pushes = smoothed(0, tracked.rate.pushes);
      }
    }
    tracked.windowTick = tick;
  }

  /** Drops streams forgotten by the rate store, at most once a keep-alive period. */
  #sweep(tick: number): void {
    if (tick - this.#lastSweepTick < this.#keepAliveTicks) return;
    this.#lastSweepTick = tick;
    for (const [key, tracked] of this.#streams) {
      if (tick - tracked.windowTick > this.#keepAliveTicks + 1) this.#streams.delete(key);
    }
  }
}
