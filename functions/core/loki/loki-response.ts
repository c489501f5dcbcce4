import type { PushEntry } from "./loki-push.ts";

/**
 * Reading Loki's 400 bodies to learn which entries of a push were refused and why. Loki stores
 * the valid entries of a 400 request, so only the refused ones must be kept elsewhere; retrying
 * the whole request would be useless. Formats (Loki 3.4, pkg/distributor and pkg/validation):
 * - "entry with timestamp <go time> ignored, reason: '<reason>',\n" per entry (at most 10), then
 *   "user '<tenant>', total ignored: N out of M for stream: {labels}\n" (ingester, out of order);
 * - "entry for stream '{labels}' has timestamp too old: <t>, oldest acceptable timestamp is: <t>",
 *   "... has timestamp too new: <t>", "Max entry size '<n>' bytes exceeded for stream '{labels}'
 *   while adding an entry with length '<n>' bytes"; several kinds as "N errors like: <msg>; ...";
 * - request-wide: "couldn't parse labels: ...", "... has 16 label names; limit 15".
 */

export type RefusalKind =
  | "too_far_behind"
  | "too_old"
  | "too_new"
  | "line_too_long"
  | "invalid_labels"
  | "too_many_labels"
  /** Never pushed: the group's tenant tag names a tenant outside LOKI_TENANTS_ALLOWED. */
  | "tenant_not_allowed"
  | "other";

export interface Refusal {
  kind: RefusalKind;
  /** Loki's own words. */
  reason: string;
}

/** Which entries (by index) Loki refused, when the body says so exactly; undefined when it does not. */
export type Attribution = Map<number, Refusal>;

const ENTRY_IGNORED = /^entry with timestamp (.+?) ignored, reason: '(.*)',$/;
const TOTAL_IGNORED = /total ignored: (\d+) out of (\d+) for stream: (\{.*\})$/;
const GROUPED = /(?:^|; )(\d+) errors like: /;
const TOO_OLD = /has timestamp too old: \S+, oldest acceptable timestamp is: \S+$/;
const TOO_NEW = /has timestamp too new: \S+$/;
const LINE_TOO_LONG =
  /^Max entry size '(\d+)' bytes exceeded for stream '.*' while adding an entry with length '(\d+)' bytes$/;

/** Errors that refuse every entry of the request: nothing of it was stored. */
export function requestWideRefusal(body: string): Refusal | undefined {
  const text = body.trim();
  if (text.startsWith("couldn't parse labels")) return { kind: "invalid_labels", reason: text };
  if (/has \d+ label names; limit \d+/.test(text)) return { kind: "too_many_labels", reason: text };
  if (/label (name|value) too long|has invalid label name|label name .* is invalid/i.test(text)) {
    return { kind: "invalid_labels", reason: text };
  }
  return undefined;
}

/** Go's time.Time.String(): "2026-11-25 13:50:14.040654321 +0000 UTC" -> nanoseconds. */
export function parseGoTime(text: string): bigint | undefined {
  const match =
    /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))? ([+-])(\d{2})(\d{2})(?: \S+)?$/.exec(
      text.trim(),
    );
  if (!match) return undefined;
  const [, date, time, fraction = "", sign, hours, minutes] = match;
  const ms = Date.parse(`${date}T${time}${sign}${hours}:${minutes}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt(fraction.padEnd(9, "0"));
}

/**
 * Attributes a 400 for a push of ONE stream to its entries. Exact or nothing: when the body lists
 * fewer entries than it counts, or names a kind this parser does not know, it returns undefined
 * and the caller splits the push to find out (re-pushing stored entries is a no-op in Loki).
 */
export function attributeRefusals(entries: readonly PushEntry[], body: string): Attribution | undefined {
  const text = body.trim();
  const wide = requestWideRefusal(text);
  if (wide) return new Map(entries.map((_, index) => [index, wide]));
  if (text === "") return undefined;

  const lines = text.split("\n");
  if (lines.some((line) => ENTRY_IGNORED.test(line))) return attributeOutOfOrder(entries, lines);

  const items: { count: number; message: string }[] = [];
  if (GROUPED.test(text)) {
    const pieces = text.split(GROUPED);
    // split with a capture group: ["", count, message, count, message, ...]
    for (let index = 1; index + 1 < pieces.length; index += 2) {
      items.push({ count: Number(pieces[index]), message: (pieces[index + 1] as string).trim() });
    }
  } else {
    items.push({ count: 1, message: text });
  }

  const attribution: Attribution = new Map();
  const byTime = entries.map((_, index) => index).sort((a, b) => compareNs(entries[a], entries[b]));
  const take = (indexes: number[], count: number, refusal: Refusal): boolean => {
    const free = indexes.filter((index) => !attribution.has(index));
    if (free.length < count) return false;
    for (const index of free.slice(0, count)) attribution.set(index, refusal);
    return true;
  };
  // Too old and too new are thresholds on the timestamp: the refused entries are the N oldest /
  // newest of the stream. Line size is exact by length. Loki reports one error per entry.
  const order: RefusalKind[] = ["too_old", "too_new", "line_too_long"];
  const classified = items.map((item) => ({ ...item, kind: classify(item.message) }));
  if (classified.some((item) => item.kind === "other")) return undefined;
  for (const kind of order) {
    for (const item of classified.filter((candidate) => candidate.kind === kind)) {
      const refusal: Refusal = { kind, reason: item.message };
      if (kind === "too_old" && !take(byTime, item.count, refusal)) return undefined;
      if (kind === "too_new" && !take([...byTime].reverse(), item.count, refusal)) return undefined;
      if (kind === "line_too_long") {
        const limit = Number(LINE_TOO_LONG.exec(item.message)?.[1]);
        const tooLong = entries
          .map((entry, index) => ({ index, size: Buffer.byteLength(entry.line) }))
          .filter((candidate) => candidate.size > limit && !attribution.has(candidate.index))
          .map((candidate) => candidate.index);
        if (tooLong.length !== item.count) return undefined;
        take(tooLong, item.count, refusal);
      }
    }
  }
  return attribution;
}

function classify(message: string): RefusalKind {
  if (TOO_OLD.test(message)) return "too_old";
  if (TOO_NEW.test(message)) return "too_new";
  if (LINE_TOO_LONG.test(message)) return "line_too_long";
  return "other";
}

function attributeOutOfOrder(entries: readonly PushEntry[], lines: string[]): Attribution | undefined {
  const attribution: Attribution = new Map();
  let ignored = 0;
  for (const line of lines) {
    const total = TOTAL_IGNORED.exec(line);
    if (total) {
      ignored += Number(total[1]);
      continue;
    }
    const entryMatch = ENTRY_IGNORED.exec(line);
    if (!entryMatch) continue;
    const ns = parseGoTime(entryMatch[1] as string);
    const reason = entryMatch[2] as string;
    const index = entries.findIndex((entry, candidate) => entry.ns === ns && !attribution.has(candidate));
    if (index < 0) return undefined;
    attribution.set(index, {
      kind: reason.startsWith("entry too far behind") ? "too_far_behind" : "other",
      reason,
    });
  }
  // Loki lists at most 10 refused entries: with more, the listed ones are not all of them.
  return ignored === attribution.size ? attribution : undefined;
}

function compareNs(a: PushEntry | undefined, b: PushEntry | undefined): number {
  const left = a?.ns ?? 0n;
  const right = b?.ns ?? 0n;
  return left < right ? -1 : left > right ? 1 : 0;
}

/** Short reason keys for metrics and reports. */
export function refusalKindOf(reason: string): RefusalKind {
  return requestWideRefusal(reason)?.kind ?? classify(reason.trim());
}
