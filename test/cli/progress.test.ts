import { describe, expect, it } from "vitest";
import type { Output } from "../../cli/output.ts";
import { createProgressDisplay, describeProgress, formatEta } from "../../cli/progress.ts";
import { printRunReport } from "../../cli/report.ts";
import type { RunReport } from "../../functions/core/workflow/run-report.ts";

/** What a user reads on stdout, kept line by line. */
function captured(interactive = false): Output & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (line) => lines.push(line), err: (line) => lines.push(line), interactive };
}

describe("progress of a run", () => {
  it("shows a bar of the plan's slices done, the rate and the time left at the pace so far", () => {
    const line = describeProgress(
      "backfill",
      "slices",
      { exported: 397_834, pushed: 300_000, throttled: 2, unitsDone: 12, unitsTotal: 48 },
      38_000,
    );
    // 12 of 48 in 38 s: the other 36 take 3 x 38 s.
    expect(line).toBe(
      "backfill [#####---------------] 12/48 slices | exported 397834 | pushed 300000 | 10469 events/s | throttled 2 | 38s | ETA 1m54s",
    );
  });

  it("has no estimate before the plan is made or a slice is done, and none left when all are", () => {
    expect(formatEta(0, 0, 5_000)).toBe("-");
    expect(formatEta(0, 10, 5_000)).toBe("-");
    expect(formatEta(10, 10, 5_000)).toBe("0s");
    expect(formatEta(1, 121, 60_000)).toBe("2h00m");
  });

  it("prints plain lines at most every 5 s when not at a terminal, and the last state on stop", () => {
    const output = captured();
    let clock = 0;
    const display = createProgressDisplay(output, "replay", { unit: "log groups", now: () => clock });
    display.update({ exported: 0, pushed: 10, throttled: 0, unitsDone: 0, unitsTotal: 2 });
    clock = 1_000;
    display.update({ exported: 0, pushed: 20, throttled: 0, unitsDone: 1, unitsTotal: 2 });
    clock = 2_000;
    display.stop();
    expect(output.lines).toEqual([
      "replay [--------------------] 0/2 log groups | exported 0 | pushed 10 | 0 events/s | throttled 0 | 0s | ETA -",
      "replay [##########----------] 1/2 log groups | exported 0 | pushed 20 | 10 events/s | throttled 0 | 2s | ETA 2s",
    ]);
  });
});

describe("the report table", () => {
  it("aligns every number column right, counts and rates as integers, sizes and seconds with one decimal", () => {
    const group = (logGroup: string, exported: number, mb: number, seconds: number, rate: number) => ({
      logGroup,
      exported,
      pushed: exported,
      dropped: {},
      refused: {},
      spilled: 0,
      streamLimited: 0,
      pushedBytes: mb * 1_048_576,
      durationMs: seconds * 1000,
      eventsPerSecond: rate,
    });
    const output = captured();
    printRunReport(output, {
      runId: "run-1",
      kind: "backfill",
      status: "succeeded",
      groups: [group("/aws/lambda/a", 397_834, 120, 38, 10_469.9), group("/aws/lambda/bb", 5, 0.01, 1.25, 4)],
      totals: group("total", 397_839, 120.01, 38, 10_956),
      hints: [],
      reportKey: "runs/run-1/report.json",
    } as unknown as RunReport);

    expect(output.lines[1]?.split("\n")).toEqual([
      "log group       exported  dropped  pushed  refused  spilled  of which refused: stream limit  MB pushed  seconds  events/s",
      "/aws/lambda/a     397834        0  397834        0        0                               0      120.0     38.0     10470",
      "/aws/lambda/bb         5        0       5        0        0                               0        0.0      1.3         4",
      "total             397839        0  397839        0        0                               0      120.0     38.0     10956",
    ]);
  });

  it("names each group's tenant when a tenant tag routed any group, and the refusal by reason", () => {
    const group = (
      logGroup: string,
      pushed: number,
      tenant?: string,
      refused: Record<string, number> = {},
    ) => ({
      logGroup,
      ...(tenant ? { tenant } : {}),
      exported: 0,
      pushed,
      dropped: {},
      refused,
      spilled: 0,
      streamLimited: 0,
      pushedBytes: 0,
      durationMs: 0,
      eventsPerSecond: 0,
    });
    const output = captured();
    printRunReport(output, {
      runId: "run-2",
      kind: "replay",
      status: "partial",
      groups: [
        group("/a", 10, "team-a"),
        group("/b", 0, "intruder", { tenant_not_allowed: 5 }),
        group("/c", 3),
      ],
      totals: group("total", 13, undefined, { tenant_not_allowed: 5 }),
      hints: [],
      reportKey: "runs/run-2/report.json",
    } as unknown as RunReport);

    expect(output.lines[1]?.split("\n")).toEqual([
      "log group  tenant     exported  dropped  pushed  refused  spilled  of which refused: stream limit  MB pushed  seconds  events/s  by reason or rule",
      "/a         team-a            0        0      10        0        0                               0        0.0      0.0         0",
      "/b         intruder          0        0       0        5        0                               0        0.0      0.0         0  5 tenant_not_allowed",
      "/c         (default)         0        0       3        0        0                               0        0.0      0.0         0",
      "total                        0        0      13        5        0                               0        0.0      0.0         0  5 tenant_not_allowed",
    ]);
  });
});
