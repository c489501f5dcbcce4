import { describe, expect, it } from "vitest";
import { perBranchRate, RateBudget } from "../../functions/core/cloudwatch/rate-budget.ts";
import { Pacer } from "../../functions/core/delivery/pacing.ts";
import { InputError } from "../../functions/core/errors.ts";
import { parseReplayRequest, readyUrl } from "../../functions/core/workflow/replay-plan.ts";
import { withinPayloadLimit } from "../../functions/core/workflow/workflow-tasks.ts";

/** A clock that only moves when the code under test sleeps: pacing measured without waiting. */
function fakeClock() {
  let now = 0;
  const sleeps: number[] = [];
  return {
    now: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
    sleeps,
    elapsed: () => now,
  };
}

describe("RateBudget", () => {
  it("lets requests go at the configured rate, shared by every caller", async () => {
    const clock = fakeClock();
    const budget = new RateBudget(5, { burst: 1, now: clock.now, sleep: clock.sleep });
    await Promise.all(Array.from({ length: 11 }, () => budget.take()));
    // 11 requests at 5/s with a burst of 1: the 11th goes after 2 s.
    expect(clock.elapsed()).toBeGreaterThanOrEqual(2000);
    expect(clock.elapsed()).toBeLessThan(2100);
  });

  it("makes the next request wait after a throttling answer emptied the bucket", async () => {
    const clock = fakeClock();
    const budget = new RateBudget(4, { burst: 4, now: clock.now, sleep: clock.sleep });
    await budget.take();
    budget.drain();
    await budget.take();
    expect(clock.elapsed()).toBeGreaterThanOrEqual(250);
  });

  it("splits an account budget between parallel Lambdas", () => {
    expect(perBranchRate(4, 4)).toBe(1);
    expect(perBranchRate(5, 2)).toBe(2.5);
  });
});

describe("Pacer", () => {
  it("holds a replay to the tenant's bytes per second overall and per stream", async () => {
    const clock = fakeClock();
    const pacer = new Pacer(
      { bytesPerSecond: 1000, perStreamBytesPerSecond: 400 },
      { now: clock.now, sleep: clock.sleep },
    );
    // 2,000 bytes on one stream: the per-stream limit (400/s) governs, about 4 s after the first burst.
    for (let index = 0; index < 5; index++) await pacer.take(new Map([["a", 400]]));
    expect(clock.elapsed()).toBeGreaterThanOrEqual(1600);
    const before = clock.elapsed();
    // 3,000 bytes over ten streams: now the overall limit (1,000/s) governs.
    for (let index = 0; index < 10; index++) await pacer.take(new Map([[`s${index}`, 300]]));
    expect(clock.elapsed() - before).toBeGreaterThanOrEqual(2000);
  });

  it("paces each tenant on its own: one tenant's spent budget does not slow another's pushes", async () => {
    const clock = fakeClock();
    const pacer = new Pacer(
      { bytesPerSecond: 1000, perStreamBytesPerSecond: 1000 },
      { now: clock.now, sleep: clock.sleep },
    );
    // Tenant A spends its burst and more: 3,000 bytes at 1,000/s wait about 2 s.
    for (let index = 0; index < 3; index++) await pacer.take(new Map([["a", 1000]]), "team-a");
    const spentByA = clock.elapsed();
    expect(spentByA).toBeGreaterThanOrEqual(2000);
    // The same stream key in tenant B is another stream, and B's overall budget is still full.
    await pacer.take(new Map([["a", 1000]]), "team-b");
    expect(clock.elapsed()).toBe(spentByA);
  });
});

describe("parseReplayRequest", () => {
  it("checks Loki's readiness by default only for a spill drain, and shares the byte budget between branches", () => {
    expect(parseReplayRequest({ source: "spill" })).toMatchObject({ checkReady: true, concurrency: 2 });
    expect(
      parseReplayRequest({ source: "rejected", concurrency: 4, bytesPerSecond: 4_000_000 }),
    ).toMatchObject({
      checkReady: false,
      options: { bytesPerSecond: 1_000_000, concurrency: 4 },
    });
  });

  it.each([
    [{ source: "outbox" }, /source must be "spill", "rejected" or "run"/],
    [{ source: "run" }, /source "run" needs sourceRunId/],
    [{ source: "spill", bytesPerSecond: 0 }, /bytesPerSecond must be above 0/],
    [{ source: "spill", speed: 3 }, /unknown field\(s\) speed/],
  ])("refuses %j with a message that says what to change", (input, message) => {
    expect(() => parseReplayRequest(input)).toThrow(InputError);
    expect(() => parseReplayRequest(input)).toThrow(message);
  });

  it("finds Loki's /ready next to the push URL", () => {
    expect(readyUrl("http://127.0.0.1:3100/loki/api/v1/push")).toBe("http://127.0.0.1:3100/ready");
    expect(readyUrl("https://logs.example.com/tenant-a/loki/api/v1/push")).toBe(
      "https://logs.example.com/tenant-a/ready",
    );
  });
});

describe("the report as execution output", () => {
  it("keeps per-group counts only in S3 when they would exceed Step Functions' 256 KiB output", () => {
    const group = (index: number) => ({
      logGroup: `/aws/lambda/${"function-with-a-long-name-".repeat(4)}${index}`,
      exported: 1,
      received: 1,
      pushed: 1,
      dropped: {},
      refused: {},
      spilled: 0,
      streamLimited: 0,
      streamWaits: 0,
      streamWaitMs: 0,
      held: 0,
      retries: 0,
      chunkBytes: 1,
      pushedBytes: 1,
      slices: 1,
      pages: 1,
      throttled: 0,
      durationMs: 1,
      eventsPerSecond: 1,
    });
    const report = {
      runId: "r",
      kind: "backfill" as const,
      status: "succeeded" as const,
      startedAt: "",
      finishedAt: "",
      durationMs: 0,
      groups: Array.from({ length: 2000 }, (_, index) => group(index)),
      totals: { ...group(0), logGroup: undefined },
      hints: [],
      reportKey: "runs/r/report.json",
    };
    const small = { ...report, groups: report.groups.slice(0, 3) };
    expect(withinPayloadLimit(small)).toBe(small);
    const compact = withinPayloadLimit(report);
    expect(compact.groups).toEqual([]);
    expect(compact.message).toBe("2000 groups: per-group counts in s3 runs/r/report.json");
  });
});
