import type { LabelPairs } from "./labels.ts";

/** Label / field names Loki reads a level from (pkg/distributor, allowedLabelsForLevel). */
const LEVEL_FIELDS = new Set([
  "level",
  "LEVEL",
  "Level",
  "severity",
  "SEVERITY",
  "Severity",
  "lvl",
  "LVL",
  "Lvl",
]);

const LEVEL_ALIASES: Record<string, string> = {
  trace: "trace",
  trc: "trace",
  debug: "debug",
  dbg: "debug",
  info: "info",
  inf: "info",
  warn: "warn",
  wrn: "warn",
  warning: "warn",
  error: "error",
  err: "error",
  critical: "critical",
  fatal: "fatal",
};

function levelFromJson(line: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed && typeof parsed === "object") {
      for (const [key, value] of Object.entries(parsed)) {
        if (LEVEL_FIELDS.has(key)) return typeof value === "string" ? value : JSON.stringify(value);
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

const LOGFMT_PAIR = /([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g;

function levelFromLogfmt(line: string): string | undefined {
  if (!line.includes("=")) return undefined;
  for (const match of line.matchAll(LOGFMT_PAIR)) {
    if (LEVEL_FIELDS.has(match[1] as string)) {
      const value = match[2] as string;
      return value.startsWith('"') ? value.slice(1, -1) : value;
    }
  }
  return undefined;
}

function levelFromKeywords(line: string): string {
  if (line.includes("info") || line.includes("INFO")) return "info";
  if (line.includes("err:") || line.includes("ERR:") || line.includes("error") || line.includes("ERROR")) {
    return "error";
  }
  if (
    line.includes("warn:") ||
    line.includes("WARN:") ||
    line.includes("warning") ||
    line.includes("WARNING")
  ) {
    return "warn";
  }
  if (line.includes("CRITICAL:") || line.includes("critical:")) return "critical";
  if (line.includes("debug:") || line.includes("DEBUG:")) return "debug";
  return "unknown";
}

/**
 * The `detected_level` Loki 3.4's distributor adds as structured metadata: a level label of the
 * stream, else one in the entry's structured metadata, else a JSON/logfmt level field of the
 * line, else keywords in the line.
 */
export function detectLevel(
  streamLabels: LabelPairs,
  metadata: LabelPairs | undefined,
  line: string,
): string {
  for (const [name, value] of streamLabels) if (LEVEL_FIELDS.has(name)) return value;
  if (metadata) for (const [name, value] of metadata) if (LEVEL_FIELDS.has(name)) return value;
  const trimmed = line.trim();
  const field =
    trimmed.startsWith("{") && trimmed.endsWith("}") ? levelFromJson(trimmed) : levelFromLogfmt(line);
  const alias = field === undefined ? undefined : LEVEL_ALIASES[field.toLowerCase()];
  return alias ?? levelFromKeywords(line);
}
