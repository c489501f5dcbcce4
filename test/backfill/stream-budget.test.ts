import { describe, expect, it } from "vitest";
import {
  DEFAULT_STREAM_BUDGET,
  parseStreamBudgetSettings,
  perBranchStreams,
  StreamBudget,
  streamHoldMs,
  tenantStreamKeys,
} from "../../functions/core/delivery/stream-budget.ts";
import { ConfigError } from "../../functions/core/errors.ts";

/** A clock the budget sleeps on: sleeping moves it forward, so no test waits. */
function fakeClock(start = 1_000_000) {
  const clock = { now: start, sleeps: [] as number[] };
  return {
    clock,
    now: () => clock.now,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms);
      clock.now += ms;
    },
  };
}

describe("StreamBudget", () => {
  it("counts each tenant's streams against its own limit, as Loki's per-tenant stream limit does", async () => {
    const time = fakeClock();
    const budget = new StreamBudget(1, 60_000, time);
    await budget.admit(tenantStreamKeys("team-a", ["{h=1}"]));

    // Tenant B (and the default tenant) open a stream at once although team-a's budget is full,
    const forB = await budget.admit(tenantStreamKeys("team-b", ["{h=1}"]));
    const forDefault = await budget.admit(tenantStreamKeys(undefined, ["{h=1}"]));
    expect([forB, forDefault]).toEqual([
      { admitted: true, waits: 0, waitedMs: 0 },
      { admitted: true, waits: 0, waitedMs: 0 },
    ]);
    // while team-a's second stream waits for its first to go idle.
    const forA = await budget.admit(tenantStreamKeys("team-a", ["{h=2}"]), time.now() + 1_000);
    expect(forA).toEqual({ admitted: false, waits: 1, waitedMs: 1_000 });
    expect(budget.active()).toBe(3);
  });

  it("admits new streams up to its limit at once, without waiting", async () => {
    const time = fakeClock();
    const budget = new StreamBudget(3, 60_000, time);

    const wait = await budget.admit(["a", "b", "c"]);

    expect(wait).toEqual({ admitted: true, waits: 0, waitedMs: 0 });
    expect(budget.active()).toBe(3);
  });

  it("holds a new stream until the oldest open one has been idle for the hold time", async () => {
    const time = fakeClock();
    const budget = new StreamBudget(2, 60_000, time);
    await budget.admit(["a"]);
    time.clock.now += 10_000;
    await budget.admit(["b"]);

    const wait = await budget.admit(["c"]);

    // "a" was opened at 0 s: it leaves the budget at 60 s, 50 s after "b" opened.
    expect(wait).toEqual({ admitted: true, waits: 1, waitedMs: 50_000 });
    expect(budget.active()).toBe(2);
  });

  it("lets pushes to streams it holds go at once, and each push restarts their idle time", async () => {
    const time = fakeClock();
    const budget = new StreamBudget(1, 60_000, time);
    await budget.admit(["a"]);
    time.clock.now += 50_000;
    budget.touch(["a"]);

    expect(await budget.admit(["a"])).toMatchObject({ admitted: true, waitedMs: 0 });
    const wait = await budget.admit(["b"]);

    // The push at 50 s keeps "a" active until 110 s.
    expect(wait.waitedMs).toBe(60_000);
  });

  it("gives up at the deadline when no stream leaves the budget before it", async () => {
    const time = fakeClock();
    const budget = new StreamBudget(1, 60_000, time);
    await budget.admit(["a"]);

    const wait = await budget.admit(["b"], time.clock.now + 20_000);

    expect(wait).toEqual({ admitted: false, waits: 1, waitedMs: 20_000 });
    expect(budget.active()).toBe(1);
  });

  it("serves concurrent callers in arrival order, never holding more than its limit", async () => {
    const time = fakeClock();
    const budget = new StreamBudget(2, 60_000, time);
    const opened: string[] = [];
    const open = async (key: string) => {
      await budget.admit([key]);
      expect(budget.active()).toBeLessThanOrEqual(2);
      opened.push(key);
    };

    await Promise.all(["h1", "h2", "h3", "h4", "h5"].map(open));

    expect(opened).toEqual(["h1", "h2", "h3", "h4", "h5"]);
    // Two streams per hold time: h3 and h4 at 60 s, h5 at 120 s.
    expect(time.clock.now - 1_000_000).toBe(120_000);
  });

  it("lets a push of more new streams than the whole budget go once the budget is empty", async () => {
    const time = fakeClock();
    const budget = new StreamBudget(2, 60_000, time);
    await budget.admit(["a"]);

    const wait = await budget.admit(["x", "y", "z"]);

    expect(wait).toMatchObject({ admitted: true, waitedMs: 60_000 });
  });
});

describe("stream budget settings", () => {
  it("defaults to Loki's limits: 5,000 streams, half for backfill, 30 min idle plus a 2 min margin", () => {
    const settings = parseStreamBudgetSettings({});
    expect(settings).toEqual(DEFAULT_STREAM_BUDGET);
    expect(perBranchStreams(settings, 4)).toBe(625);
    expect(streamHoldMs(settings)).toBe(32 * 60_000);
  });

  it("reads the tenant's limit, the share and the idle period from LOKI_* variables", () => {
    const settings = parseStreamBudgetSettings({
      LOKI_MAX_GLOBAL_STREAMS_PER_USER: "20",
      LOKI_BACKFILL_STREAM_SHARE: "0.5",
      LOKI_CHUNK_IDLE_PERIOD: "1s",
      LOKI_STREAM_IDLE_MARGIN: "200ms",
    });
    expect(settings).toEqual({
      maxGlobalStreamsPerUser: 20,
      share: 0.5,
      chunkIdlePeriodMs: 1000,
      idleMarginMs: 200,
    });
    expect(perBranchStreams(settings, 1)).toBe(10);
  });

  it("names every bad variable in one error", () => {
    const read = () =>
      parseStreamBudgetSettings({
        LOKI_MAX_GLOBAL_STREAMS_PER_USER: "many",
        LOKI_BACKFILL_STREAM_SHARE: "1.5",
        LOKI_CHUNK_IDLE_PERIOD: "half an hour",
      });
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/LOKI_MAX_GLOBAL_STREAMS_PER_USER: expected a number \(got "many"\)/);
    expect(read).toThrow(/LOKI_BACKFILL_STREAM_SHARE: must be at most 1/);
    expect(read).toThrow(/LOKI_CHUNK_IDLE_PERIOD: expected a duration/);
  });

  it("refuses a share that leaves a branch no stream, naming the settings", () => {
    const settings = { ...DEFAULT_STREAM_BUDGET, maxGlobalStreamsPerUser: 4 };
    expect(() => perBranchStreams(settings, 4)).toThrow(
      /LOKI_MAX_GLOBAL_STREAMS_PER_USER=4 .* leaves less than one stream to each of 4 branches/,
    );
  });
});
