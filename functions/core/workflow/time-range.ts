import { isValid, parseISO, sub } from "date-fns";
import { InputError } from "../errors.ts";

/**
 * Time ranges as people type them: an ISO timestamp or date (`2026-11-01`, `2026-11-01T06:00Z`),
 * a relative age (`7d`, `36h`, `90m`, `2w`) meaning "that long ago", or `now`; a range is either
 * one of those ("since then, until now") or two joined by `..` (`2026-11-01..2026-11-08`, `3d..1d`).
 * Timestamps without an offset are read as UTC, so a range means the same on every machine.
 */
export interface TimeRange {
  /** Inclusive, ms since the epoch. */
  startMs: number;
  /** Exclusive, ms since the epoch. */
  endMs: number;
}

const RELATIVE = /^(\d+)\s*(m|min|h|d|w)$/i;
const UNIT_DURATIONS: Record<string, keyof Duration> = {
  m: "minutes",
  min: "minutes",
  h: "hours",
  d: "days",
  w: "weeks",
};
type Duration = { minutes: number; hours: number; days: number; weeks: number };

/** One point in time; `what` names it in the error message. */
export function parseTimePoint(text: string, now: number, what = "time"): number {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === "now") return now;
  const relative = RELATIVE.exec(trimmed);
  if (relative) {
    const unit = UNIT_DURATIONS[(relative[2] ?? "").toLowerCase()] as keyof Duration;
    return sub(new Date(now), { [unit]: Number(relative[1]) }).getTime();
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const hasOffset = /(Z|[+-]\d{2}(:?\d{2})?)$/i.test(trimmed) && trimmed.includes("T");
    const withOffset = trimmed.includes("T") && !hasOffset ? `${trimmed}Z` : trimmed;
    // A bare date is the start of that UTC day.
    const parsed = trimmed.includes("T") ? parseISO(withOffset) : parseISO(`${trimmed}T00:00:00Z`);
    if (isValid(parsed)) return parsed.getTime();
  }
  throw new InputError(
    `Cannot read ${what} ${JSON.stringify(text)}: use an ISO timestamp such as 2026-11-01T06:00:00Z, a date such as 2026-11-01, a relative age such as 7d, 36h or 90m, or now`,
  );
}

/** A range as `start..end` or a single point meaning "from then until now". */
export function parseTimeRange(text: string, now: number): TimeRange {
  const parts = text.split("..");
  if (parts.length > 2) {
    throw new InputError(
      `Cannot read time range ${JSON.stringify(text)}: expected START..END or a single START`,
    );
  }
  const [startText = "", endText] = parts;
  const startMs = parseTimePoint(startText, now, "range start");
  const endMs =
    endText === undefined || endText.trim() === "" ? now : parseTimePoint(endText, now, "range end");
  return checkedRange(startMs, endMs, text);
}

/** A range from separate start and end strings (end defaults to now). */
export function parseStartEnd(start: string, end: string | undefined, now: number): TimeRange {
  const startMs = parseTimePoint(start, now, "start");
  const endMs = end === undefined ? now : parseTimePoint(end, now, "end");
  return checkedRange(startMs, endMs, `${start}..${end ?? "now"}`);
}

function checkedRange(startMs: number, endMs: number, text: string): TimeRange {
  if (endMs <= startMs) {
    throw new InputError(
      `Time range ${JSON.stringify(text)} ends (${new Date(endMs).toISOString()}) before it starts (${new Date(startMs).toISOString()}): put the earlier time first`,
    );
  }
  return { startMs, endMs };
}
