import type { RunReport } from "../functions/core/workflow/run-report.ts";
import { formatTable, type Output } from "./output.ts";

/** The end-of-run report as a table, then what the operator can do about refused or kept events. */
export function printRunReport(output: Output, report: RunReport): void {
  output.out(
    `Run ${report.runId} (${report.kind}): ${report.status}${report.message ? ` — ${report.message}` : ""}`,
  );
  const total = (counts: Record<string, number>) =>
    Object.values(counts).reduce((sum, count) => sum + count, 0);
  // Refused by reason and dropped by rule ("2 too_old, 5 rule 1"), in a last column when there are any.
  const reasons = (group: RunReport["totals"]) =>
    [...Object.entries(group.refused), ...Object.entries(group.dropped)]
      .map(([reason, count]) => `${count} ${reason}`)
      .join(", ");
  const anyReasons = reasons(report.totals) !== "";
  // A tenant column only when a tenant tag routed some group elsewhere than the default tenant.
  const anyTenants = report.groups.some((group) => group.tenant !== undefined);
  // The account and region of each group (runs planned by earlier versions have none).
  const anyAccounts = report.groups.some((group) => group.account !== undefined);
  // Counts and rates as integers, sizes and durations with one decimal; all aligned right.
  const oneDecimal = (value: number) => value.toFixed(1);
  const row = (name: string, group: RunReport["totals"], tenant?: string, account = "") => [
    name,
    ...(anyTenants ? [tenant ?? ""] : []),
    group.exported,
    total(group.dropped),
    group.pushed,
    total(group.refused),
    group.spilled,
    group.streamLimited,
    oneDecimal(group.pushedBytes / 1_048_576),
    oneDecimal(group.durationMs / 1000),
    Math.round(group.eventsPerSecond),
    ...(anyAccounts ? [account] : []),
    ...(anyReasons ? [reasons(group)] : []),
  ];
  const header = reportHeader({ anyTenants, anyAccounts });
  output.out(
    formatTable(anyReasons ? [...header, "by reason or rule"] : header, [
      ...report.groups.map((group) =>
        row(
          group.logGroup,
          group,
          group.tenant ?? "(default)",
          group.account ? `${group.account} ${group.region}` : "",
        ),
      ),
      row("total", report.totals),
    ]),
  );
  if (report.totals.streamWaits > 0) {
    output.out(
      `stream budget: ${report.totals.streamWaits} chunk(s) waited ${(report.totals.streamWaitMs / 1000).toFixed(1)} s in all for hour streams to go idle in Loki (LOKI_MAX_GLOBAL_STREAMS_PER_USER × LOKI_BACKFILL_STREAM_SHARE)`,
    );
  }
  for (const hint of report.hints) output.out(`hint: ${hint}`);
  output.out(`Report: ${report.reportKey}`);
}

/** The columns of the report table, with a tenant and an account column when a group has one. */
function reportHeader(columns: { anyTenants: boolean; anyAccounts: boolean }): string[] {
  const { anyTenants, anyAccounts } = columns;
  return [
    "log group",
    ...(anyTenants ? ["tenant"] : []),
    "exported",
    "dropped",
    "pushed",
    "refused",
    "spilled",
    "of which refused: stream limit",
    "MB pushed",
    "seconds",
    "events/s",
    ...(anyAccounts ? ["account"] : []),
  ];
}
