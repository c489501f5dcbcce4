/** Timestamps are unix epoch nanoseconds as bigint: Loki's precision exceeds a double's. */
export const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

export function nowNs(): bigint {
  return BigInt(Date.now()) * NS_PER_MS;
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms)) * NS_PER_MS;
}

function splitSeconds(ns: bigint): { seconds: bigint; fraction: bigint } {
  let seconds = ns / NS_PER_S;
  let fraction = ns % NS_PER_S;
  if (fraction < 0n) {
    fraction += NS_PER_S;
    seconds -= 1n;
  }
  return { seconds, fraction };
}

function dateAndTime(seconds: bigint): { date: string; time: string } {
  const iso = new Date(Number(seconds) * 1000).toISOString();
  return { date: iso.slice(0, 10), time: iso.slice(11, 19) };
}

/** Go `time.RFC3339` in UTC, truncated to seconds, as Loki prints validation errors. */
export function formatRfc3339(ns: bigint): string {
  const { date, time } = dateAndTime(splitSeconds(ns).seconds);
  return `${date}T${time}Z`;
}

/** Go `time.Time.String()` in UTC ("2026-11-25 13:50:14.04065 +0000 UTC"), trailing zeros trimmed. */
export function formatGoTime(ns: bigint): string {
  const { seconds, fraction } = splitSeconds(ns);
  const { date, time } = dateAndTime(seconds);
  const fractionText = fraction === 0n ? "" : `.${fraction.toString().padStart(9, "0").replace(/0+$/, "")}`;
  return `${date} ${time}${fractionText} +0000 UTC`;
}

/** Parses RFC3339 with up to 9 fraction digits (the legacy push format) to ns; undefined if invalid. */
export function parseRfc3339Nano(text: string): bigint | undefined {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * NS_PER_MS + BigInt((match[2] ?? "").padEnd(9, "0"));
}

/**
 * Query time parameters as Loki's `loghttp` parses them: a float is seconds, an integer of up to
 * 10 digits is seconds, a longer one nanoseconds, else RFC3339Nano.
 */
export function parseQueryTime(text: string | null, fallback: bigint): bigint | undefined {
  if (text === null || text === "") return fallback;
  if (text.includes(".")) {
    const seconds = Number(text);
    if (!Number.isNaN(seconds)) {
      const whole = Math.trunc(seconds);
      return BigInt(whole) * NS_PER_S + BigInt(Math.round((seconds - whole) * 1e9));
    }
  }
  if (/^[+-]?\d+$/.test(text)) {
    const value = BigInt(text);
    return text.replace(/^[+-]/, "").length <= 10 ? value * NS_PER_S : value;
  }
  return parseRfc3339Nano(text);
}
