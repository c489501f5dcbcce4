import { OverridesError } from "./errors.ts";

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/** Parses a Prometheus `model.Duration` as Loki's config accepts it ("168h", "30d1h", "10m"), to ms. */
export function parseDurationMs(text: string, key: string): number {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  const part = /(\d+)(ms|s|m|h|d|w|y)/y;
  let total = 0;
  let pos = 0;
  while (pos < trimmed.length) {
    part.lastIndex = pos;
    const match = part.exec(trimmed);
    if (!match)
      throw new OverridesError(`${key}: not a duration: ${JSON.stringify(text)} (expected e.g. "168h")`);
    total += Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
    pos = part.lastIndex;
  }
  if (pos === 0) throw new OverridesError(`${key}: not a duration: ${JSON.stringify(text)}`);
  return total;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parses a byte size as Loki's `flagext.ByteSize` does (c2h5oh/datasize: KB = 1024 B, so the
 * default max_line_size "256KB" is 262144 bytes). Plain numbers are bytes.
 */
export function parseByteSize(value: unknown, key: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === "string") {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
    const unit = SIZE_UNITS[(match?.[2] ?? "").toLowerCase()];
    if (match && unit !== undefined) return Math.round(Number(match[1]) * unit);
  }
  throw new OverridesError(`${key}: not a byte size: ${JSON.stringify(value)} (expected e.g. "512MB")`);
}

/** Go's `time.Duration.String()` for a non-negative number of ms ("768h1m0s", "1.5s", "0s"). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const secondsMs = ms % 60_000;
  const seconds = String(secondsMs / 1000);
  let text = "";
  if (hours > 0) text += `${hours}h`;
  if (hours > 0 || minutes > 0) text += `${minutes}m`;
  return `${text}${seconds}s`;
}

/** Prometheus `model.Duration.String()` ("30d1h"; weeks only when exact). */
export function formatModelDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let text = "";
  const unit = (suffix: string, size: number, exact: boolean) => {
    if (exact && rest % size !== 0) return;
    const count = Math.floor(rest / size);
    if (count > 0) {
      text += `${count}${suffix}`;
      rest -= count * size;
    }
  };
  unit("y", DURATION_UNITS_MS.y as number, false);
  unit("w", DURATION_UNITS_MS.w as number, true);
  unit("d", DURATION_UNITS_MS.d as number, false);
  unit("h", DURATION_UNITS_MS.h as number, false);
  unit("m", DURATION_UNITS_MS.m as number, false);
  unit("s", DURATION_UNITS_MS.s as number, false);
  unit("ms", 1, false);
  return text;
}

const BYTE_UNITS: ReadonlyArray<[string, number]> = [
  ["TB", 1024 ** 4],
  ["GB", 1024 ** 3],
  ["MB", 1024 ** 2],
  ["KB", 1024],
];

/** Loki's `flagext.ByteSize` as it prints it (c2h5oh/datasize: the largest unit that divides it, "256KB", "1000B"). */
export function formatByteSize(bytes: number): string {
  if (bytes === 0) return "0B";
  for (const [unit, size] of BYTE_UNITS) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
