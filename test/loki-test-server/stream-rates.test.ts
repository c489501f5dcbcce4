import { describe, expect, it } from "vitest";
import { StreamRates } from "../../loki-test-server/stream-rates.ts";

/** Stream rates on a clock the test moves (ticks of 1 s). */
function ratesAt(startMs = 0) {
  const clock = { ms: startMs };
  const rates = new StreamRates({ nowMs: () => clock.ms, tickMs: 1000 });
  return { rates, clock };
}

describe("stream rates (Loki's ingester rate calculator and distributor rate store)", () => {
  it("knows nothing of a stream until the window of its first push has closed", () => {
    const { rates, clock } = ratesAt(100);
    rates.record("t", "{a}", "{a}", 500);
    clock.ms = 999;
    expect(rates.rateFor("t", "{a}")).toEqual({ bytesPerSecond: 0, pushes: 0 });
    clock.ms = 1000;
    expect(rates.rateFor("t", "{a}")).toEqual({ bytesPerSecond: 500, pushes: 1 });
  });

  it("sums the bytes of a window's pushes and counts them", () => {
    const { rates, clock } = ratesAt();
    for (const bytes of [100, 200, 300]) rates.record("t", "{a}", "{a}", bytes);
    clock.ms = 1000;
    expect(rates.rateFor("t", "{a}")).toEqual({ bytesPerSecond: 600, pushes: 3 });
  });

  it("adds a stream's shards up: bytes summed, pushes of the busiest shard", () => {
    const { rates, clock } = ratesAt();
    rates.record("t", "{a}", '{__stream_shard__="0", a}', 100);
    rates.record("t", "{a}", '{__stream_shard__="0", a}', 100);
    rates.record("t", "{a}", '{__stream_shard__="1", a}', 50);
    clock.ms = 1000;
    expect(rates.rateFor("t", "{a}")).toEqual({ bytesPerSecond: 250, pushes: 2 });
  });

  it("smooths each new window into the rate: 0.4 × new + 0.6 × old, bytes truncated", () => {
    const { rates, clock } = ratesAt();
    rates.record("t", "{a}", "{a}", 1000);
    clock.ms = 1000;
    rates.record("t", "{a}", "{a}", 251);
    rates.record("t", "{a}", "{a}", 250);
    clock.ms = 2000;
    const rate = rates.rateFor("t", "{a}");
    expect(rate.bytesPerSecond).toBe(800); // 0.4 × 501 + 0.6 × 1000 = 800.4
    expect(rate.pushes).toBeCloseTo(1.4); // 0.4 × 2 + 0.6 × 1
  });

  it("decays a stream without pushes to 0.6 of its rate at every tick, the pushes too", () => {
    const { rates, clock } = ratesAt();
    rates.record("t", "{a}", "{a}", 1000);
    clock.ms = 3500; // windows 1 and 2 had no push
    const rate = rates.rateFor("t", "{a}");
    expect(rate.bytesPerSecond).toBe(360);
    expect(rate.pushes).toBeCloseTo(0.36);
  });

  it("forgets a stream it has not seen for 10 minutes, so that its next push counts as a first one", () => {
    const { rates, clock } = ratesAt();
    rates.record("t", "{a}", "{a}", 1000);
    clock.ms = 1000 + 600_000; // seen at tick 1, 600 ticks ago
    expect(rates.rateFor("t", "{a}").pushes).toBeGreaterThan(0);
    clock.ms = 1000 + 601_000;
    expect(rates.rateFor("t", "{a}")).toEqual({ bytesPerSecond: 0, pushes: 0 });
  });

  it("counts a push of no new bytes (a repeated entry) as a push", () => {
    const { rates, clock } = ratesAt();
    rates.record("t", "{a}", "{a}", 10);
    rates.record("t", "{a}", "{a}", 0);
    clock.ms = 1000;
    expect(rates.rateFor("t", "{a}")).toEqual({ bytesPerSecond: 10, pushes: 2 });
  });

  it("keeps tenants and streams apart", () => {
    const { rates, clock } = ratesAt();
    rates.record("t", "{a}", "{a}", 1000);
    clock.ms = 1000;
    expect(rates.rateFor("other", "{a}")).toEqual({ bytesPerSecond: 0, pushes: 0 });
    expect(rates.rateFor("t", "{b}")).toEqual({ bytesPerSecond: 0, pushes: 0 });
  });
});
