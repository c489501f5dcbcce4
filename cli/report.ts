import type { RunReport } from "../functions/core/workflow/run-report.ts";
import { formatTable, type Output } from "./output.ts";

/** The end-of-run report as a table, then what the operator can do about refused or kept events. */
export function printRunReport(output: Output, report: RunReport): void {
  output.out(
    `Run ${report.runId} (${report.kind}): ${report.status}${report.message ? ` — ${report.message}` : ""}`,
  );
  // Counts by reason or rule: "2 too_old", "5 rule 1".
  const refusedText = (refused: Record<string, number>) =>
    Object.entries(refused)
      .map(([reason, count]) => `${count} ${reason}`)
      .join(", ") || "0";
  const row = (name: string, group: RunReport["totals"]) => [
    name,
    group.exported,
    refusedText(group.dropped),
    group.pushed,
    refusedText(group.refused),
    group.spilled,
    group.streamLimited,
    (group.pushedBytes / 1_048_576).toFixed(1),
    (group.durationMs / 1000).toFixed(1),
    group.eventsPerSecond,
  ];
  output.out(
    formatTable(
      [
        "log group",
        "exported",
        "dropped",
        "pushed",
        "refused",
        "spilled",
        "of which refused: stream limit",
        "MB pushed",
        "seconds",
        "events/s",
      ],
      [...report.groups.map((group) => row(group.logGroup, group)), row("total", report.totals)],
    ),
  );
  if (report.totals.streamWaits > 0) {
    output.out(
      `stream budget: ${report.totals.streamWaits} chunk(s) waited ${(report.totals.streamWaitMs / 1000).toFixed(1)} s in all for hour streams to go idle in Loki (LOKI_MAX_GLOBAL_STREAMS_PER_USER × LOKI_BACKFILL_STREAM_SHARE)`,
    );
  }
  for (const hint of report.hints) output.out(`hint: ${hint}`);
  output.out(`Report: ${report.reportKey}`);
}
