/**
 * The figures of Lambda's own report line at the end of every invocation, as structured metadata
 * (numbers without units) so that LogQL can `unwrap` them: p99 duration per function, functions
 * near their memory size. Two formats carry them:
 *
 * - text: `REPORT RequestId: <id>\tDuration: 36.00 ms\tBilled Duration: 36 ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB\tInit Duration: 150.12 ms\t`
 * - JSON log format: `{"time":"…","type":"platform.report","record":{"requestId":"<id>","metrics":{"durationMs":36.0,"billedDurationMs":36,"memorySizeMB":128,"maxMemoryUsedMB":71,"initDurationMs":150.12},"status":"success"}}`
 *
 * The names are the Lambda Telemetry API's `platform.report` metrics (durationMs, billedDurationMs,
 * memorySizeMB, maxMemoryUsedMB, initDurationMs) in the snake_case that Loki gives structured
 * metadata and labels (`detected_level`, `service_name`), the unit kept as a suffix as Prometheus
 * names do: duration_ms, billed_duration_ms, memory_size_mb, max_memory_used_mb, init_duration_ms.
 * The request id is `request_id`, as for every other line (batching.ts).
 *
 * One figure is derived: `memory_utilization`, max memory used as a percentage of the memory size,
 * named after the Lambda Insights metric that holds the same. LogQL cannot divide one field by
 * another within a line, so "functions above 90 % of their memory" needs it as a field of its own.
 */

export const REPORT_FIELDS = [
  "duration_ms",
  "billed_duration_ms",
  "memory_size_mb",
  "max_memory_used_mb",
  "init_duration_ms",
  "memory_utilization",
] as const;

export type ReportField = (typeof REPORT_FIELDS)[number];

/** Text REPORT keys and JSON `metrics` keys, by field. */
const TEXT_KEYS: Record<string, ReportField> = {
  Duration: "duration_ms",
  "Billed Duration": "billed_duration_ms",
  "Memory Size": "memory_size_mb",
  "Max Memory Used": "max_memory_used_mb",
  "Init Duration": "init_duration_ms",
};
const JSON_KEYS: Record<string, ReportField> = {
  durationMs: "duration_ms",
  billedDurationMs: "billed_duration_ms",
  memorySizeMB: "memory_size_mb",
  maxMemoryUsedMB: "max_memory_used_mb",
  initDurationMs: "init_duration_ms",
};

const NUMBER = /^\d+(?:\.\d+)?$/;
/** A platform.report record is a few hundred bytes; a longer line is something else. */
const MAX_JSON_REPORT_CHARS = 4096;

/** The report's figures in field order, or undefined when the line is no Lambda report. */
export function lambdaReportFields(line: string): [ReportField, string][] | undefined {
  if (line.startsWith("REPORT RequestId: ")) return textReport(line);
  if (line.startsWith("{") && line.length <= MAX_JSON_REPORT_CHARS && line.includes('"platform.report"'))
    return jsonReport(line);
  return undefined;
}

function textReport(line: string): [ReportField, string][] | undefined {
  const found = new Map<ReportField, string>();
  for (const part of line.split("\t")) {
    const separator = part.indexOf(": ");
    if (separator < 0) continue;
    const field = TEXT_KEYS[part.slice(0, separator)];
    // "36.00 ms", "128 MB": the number before the unit.
    const value = part.slice(separator + 2).split(" ")[0] ?? "";
    if (field && NUMBER.test(value)) found.set(field, normalise(value));
  }
  return inFieldOrder(found);
}

function jsonReport(line: string): [ReportField, string][] | undefined {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return undefined;
  }
  const { type, record: body } = (record ?? {}) as { type?: unknown; record?: { metrics?: unknown } };
  if (type !== "platform.report" || typeof body?.metrics !== "object" || body.metrics === null)
    return undefined;
  const found = new Map<ReportField, string>();
  for (const [key, value] of Object.entries(body.metrics)) {
    const field = JSON_KEYS[key];
    if (field && typeof value === "number" && Number.isFinite(value) && value >= 0)
      found.set(field, normalise(String(value)));
  }
  return inFieldOrder(found);
}

/** "36.00" and 36.0 are both written "36", so that both formats give the same value. */
function normalise(value: string): string {
  return String(Number(value));
}

function inFieldOrder(found: Map<ReportField, string>): [ReportField, string][] | undefined {
  if (found.size === 0) return undefined;
  const used = Number(found.get("max_memory_used_mb"));
  const size = Number(found.get("memory_size_mb"));
  // Percent with one decimal: 115 of 128 MB is 89.8, not rounded up into "above 90 %".
  if (used >= 0 && size > 0) found.set("memory_utilization", String(Math.round((used * 1000) / size) / 10));
  return REPORT_FIELDS.flatMap((field) => {
    const value = found.get(field);
    return value === undefined ? [] : [[field, value] as [ReportField, string]];
  });
}
