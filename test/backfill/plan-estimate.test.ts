import { describe, expect, it } from "vitest";
import { DEFAULT_STREAM_BUDGET } from "../../functions/core/delivery/stream-budget.ts";
import { splitIntoSlices } from "../../functions/core/workflow/backfill-plan.ts";
import {
  describeEstimate,
  estimatePlan,
  formatDuration,
} from "../../functions/core/workflow/plan-estimate.ts";

const HOUR = 3_600_000;
const start = Date.UTC(2026, 10, 20);

function slicesOf(groups: number, hours: number, sliceHours = 1) {
  const windows = splitIntoSlices(start, start + hours * HOUR, sliceHours);
  return Array.from({ length: groups }, (_, group) =>
    windows.map((window) => ({ logGroup: `/aws/lambda/g${group}`, ...window })),
  ).flat();
}

describe("plan estimate", () => {
  it("200 groups over 7 days at Loki's default limit: 33,600 hour streams, bound by the stream budget", () => {
    const estimate = estimatePlan(slicesOf(200, 7 * 24), DEFAULT_STREAM_BUDGET, 4);

    // 33,600 streams, 2,500 at a time: 14 rounds, the last starting 13 × 32 min after the first.
    expect(estimate).toEqual({
      hourStreams: 33_600,
      streamBudget: 2_500,
      streamBoundMs: 13 * 32 * 60_000,
      paceBoundMs: (33_600 / 4) * 1000,
    });
    expect(describeEstimate(estimate, DEFAULT_STREAM_BUDGET)).toBe(
      "33600 hour stream(s) to open, at most 2500 at a time (LOKI_MAX_GLOBAL_STREAMS_PER_USER=5000 × " +
        "LOKI_BACKFILL_STREAM_SHARE=0.5, each open until idle for LOKI_CHUNK_IDLE_PERIOD=30 min + 2 min): " +
        "the stream budget alone makes the run take at least 6 h 56 min; the FilterLogEvents pace at least 2 h 20 min; " +
        "the stream limit bounds this run: raise max_global_streams_per_user in Loki (and LOKI_MAX_GLOBAL_STREAMS_PER_USER) to make it faster",
    );
  });

  it("counts every hour a longer slice covers, and a raised limit removes the stream bound", () => {
    const raised = { ...DEFAULT_STREAM_BUDGET, maxGlobalStreamsPerUser: 100_000 };
    const estimate = estimatePlan(slicesOf(10, 48, 6), raised, 4);

    expect(estimate).toMatchObject({ hourStreams: 480, streamBoundMs: 0, paceBoundMs: 20_000 });
    expect(describeEstimate(estimate, raised)).toMatch(
      /the stream budget holds them all at once; the FilterLogEvents pace at least 20 s$/,
    );
  });

  it("writes durations the way an operator reads them", () => {
    expect([500, 40_000, 12 * 60_000, 2 * HOUR, 7 * HOUR + 35 * 60_000].map(formatDuration)).toEqual([
      "500 ms",
      "40 s",
      "12 min",
      "2 h",
      "7 h 35 min",
    ]);
  });
});
