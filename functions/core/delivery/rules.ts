import { RE2JS } from "re2js";
import * as z from "zod/mini";
import { ConfigError } from "../errors.ts";
import type { LogEvent } from "../log-event.ts";
import { compileRe2 } from "../re2-pattern.ts";
import "../mini-schema.ts";

/**
 * Drop and mask rules: what of an event is shipped at all, and with what hidden. Applied once,
 * where events come from CloudWatch (the live subscription batch, the backfill's FilterLogEvents
 * pages), before anything is batched or kept in S3: chunks in `spill/`, `rejected/` and `runs/`
 * hold events as shipped, and a replay never applies the rules again. Applying rules twice could
 * change a line a second time (a drop after a mask, a mask whose output another one matches), and
 * the same event would then land in Loki twice.
 *
 * Every pattern runs on RE2 (re2js, pure JavaScript): matching is linear in the line's length
 * whatever the pattern, so a rule like `(a+)+$` cannot stall the shipper on a hostile line.
 */

/**
 * Built-in masks: patterns chosen so that their replacement never matches any of them again.
 * `mayMatch` is a necessary condition checked first (a literal, or a V8 pattern without nested
 * or overlapping repetition, so linear too): most lines hold nothing to mask.
 */
export const BUILTIN_MASKS = {
  email: {
    pattern: "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}",
    replacement: "<email>",
    mayMatch: (text: string) => text.includes("@"),
  },
  ipv4: {
    pattern:
      "\\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\b",
    replacement: "<ipv4>",
    mayMatch: (text: string) => /\d\.\d{1,3}\.\d/.test(text),
  },
  // Full form, or a `::` compressed form with at least one group ("::" alone is common in code).
  ipv6: {
    pattern: [
      "\\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\\b",
      "\\b(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?",
      "::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4}\\b",
    ].join("|"),
    replacement: "<ipv6>",
    mayMatch: (text: string) => text.includes("::") || hasColons(text, 7),
  },
  // RFC 6750 bearer tokens (Authorization headers), the scheme kept for context.
  bearer: {
    pattern: "(?i)(bearer\\s+)[A-Za-z0-9._~+/-]+=*",
    replacement: "$1<token>",
    mayMatch: (text: string) => /bearer/i.test(text),
  },
  // A JSON Web Token: base64url header and payload, both JSON objects, so they start with "eyJ".
  jwt: {
    pattern: "eyJ[A-Za-z0-9_-]+\\.eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*",
    replacement: "<jwt>",
    mayMatch: (text: string) => text.includes("eyJ"),
  },
  // AWS access key ids (long-term AKIA, temporary ASIA), https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html
  aws_access_key: {
    pattern: "\\b(?:AKIA|ASIA)[A-Z0-9]{16}\\b",
    replacement: "<aws_access_key>",
    mayMatch: (text: string) => text.includes("AKIA") || text.includes("ASIA"),
  },
} as const;

function hasColons(text: string, count: number): boolean {
  let at = -1;
  for (let found = 0; found < count; found += 1) {
    at = text.indexOf(":", at + 1);
    if (at < 0) return false;
  }
  return true;
}

/**
 * Up to this length a built-in mask runs on V8's own engine, which is several times faster than
 * RE2 in JavaScript when a line does hold something to mask. The built-in patterns have no nested
 * repetition: V8's worst case on them is quadratic in the line's length (a long run of
 * local-part characters before an "@" that is no email), bounded here to about 3·10^4 steps, what
 * RE2 takes for a line with a match; longer lines go to RE2. Both engines give the same result for these patterns (rules.test.ts).
 */
export const FAST_MASK_MAX_CHARS = 256;

export type BuiltinMask = keyof typeof BUILTIN_MASKS;
export const BUILTIN_MASK_NAMES = Object.keys(BUILTIN_MASKS) as BuiltinMask[];

/** One rule as configured (LOG_RULES, the construct's `rules` prop): JSON objects in order. */
export type RuleSpec =
  | { action: "drop"; pattern: string; logGroups?: string }
  | { action: "mask"; builtin: BuiltinMask | "all"; logGroups?: string }
  | { action: "mask"; pattern: string; replacement?: string; logGroups?: string };

/** What a custom mask writes when its rule gives no replacement. */
export const DEFAULT_MASK_REPLACEMENT = "<redacted>";

interface CompiledRule {
  /** 1-based position in the configuration: "dropped by rule N". */
  number: number;
  action: "drop" | "mask";
  description: string;
  pattern: RE2JS;
  replacement: string;
  /** A cheap necessary condition for a match (built-in masks only). */
  mayMatch?: (text: string) => boolean;
  /** The same pattern on V8, for lines up to FAST_MASK_MAX_CHARS (built-in masks only). */
  fast?: RegExp;
  logGroups?: RE2JS;
}

export interface RuleSummary {
  number: number;
  action: "drop" | "mask";
  description: string;
  logGroups?: string;
}

/** What the rules make of one event: the event as shipped, or the rule that dropped it. */
export type RuleOutcome = { event: LogEvent } | { droppedBy: number };

export interface ShapedEvents {
  events: LogEvent[];
  /** Dropped events per rule, keyed "rule N". */
  dropped: Record<string, number>;
}

const ruleSchema = z.union([
  z.strictObject({
    action: z.literal("drop"),
    pattern: z.string().check(z.minLength(1)),
    logGroups: z.optional(z.string().check(z.minLength(1))),
  }),
  z.strictObject({
    action: z.literal("mask"),
    builtin: z.enum(["all", ...BUILTIN_MASK_NAMES]),
    logGroups: z.optional(z.string().check(z.minLength(1))),
  }),
  z.strictObject({
    action: z.literal("mask"),
    pattern: z.string().check(z.minLength(1)),
    replacement: z.optional(z.string()),
    logGroups: z.optional(z.string().check(z.minLength(1))),
  }),
]);

const RULE_SHAPES = `{"action":"drop","pattern":"…","logGroups"?:"…"}, {"action":"mask","builtin":"${BUILTIN_MASK_NAMES.join("|")}|all"} or {"action":"mask","pattern":"…","replacement"?:"…"}`;

/** An ordered set of compiled rules; the rules of each log group are worked out once. */
export class RuleSet {
  readonly #rules: CompiledRule[];
  readonly #byGroup = new Map<string, CompiledRule[]>();

  private constructor(rules: CompiledRule[]) {
    this.#rules = rules;
  }

  static readonly empty = new RuleSet([]);

  /** Compiles every rule; throws one ConfigError with a line per bad rule. */
  static parse(specs: readonly unknown[], source = "LOG_RULES"): RuleSet {
    const problems: string[] = [];
    const rules: CompiledRule[] = [];
    specs.forEach((spec, index) => {
      const compiled = compileRule(spec, index + 1, (problem) =>
        problems.push(`${source} rule ${index + 1}: ${problem}`),
      );
      if (compiled) rules.push(...compiled);
    });
    if (problems.length > 0) throw new ConfigError(problems);
    return new RuleSet(rules);
  }

  /** Parses the JSON text of `LOG_RULES` (unset or empty: no rules). */
  static fromJson(text: string | undefined, source = "LOG_RULES"): RuleSet {
    if (text === undefined || text.trim() === "") return RuleSet.empty;
    let specs: unknown;
    try {
      specs = JSON.parse(text);
    } catch (error) {
      throw new ConfigError([
        `${source}: not JSON (${(error as Error).message}); expected a list of ${RULE_SHAPES}`,
      ]);
    }
    if (!Array.isArray(specs)) {
      throw new ConfigError([`${source}: expected a JSON list of ${RULE_SHAPES}`]);
    }
    return RuleSet.parse(specs, source);
  }

  get size(): number {
    return new Set(this.#rules.map((rule) => rule.number)).size;
  }

  /** The rules that apply to a log group, in order (what the CLI's `labels` command lists). */
  describe(logGroup: string): RuleSummary[] {
    const seen = new Set<number>();
    return this.#forGroup(logGroup).flatMap((rule) => {
      if (seen.has(rule.number)) return [];
      seen.add(rule.number);
      return [
        {
          number: rule.number,
          action: rule.action,
          description: rule.description,
          ...(rule.logGroups ? { logGroups: rule.logGroups.pattern() } : {}),
        },
      ];
    });
  }

  /**
   * Applies the group's rules in order: the first matching drop rule drops the event. The log
   * stream name becomes structured metadata (or a label), so the masks apply to it too;
   * `maskedStreams` remembers it across the events of a batch, which share a few names.
   */
  apply(logGroup: string, event: LogEvent, maskedStreams = new Map<string, string>()): RuleOutcome {
    const rules = this.#forGroup(logGroup);
    let message = event.message;
    for (const rule of rules) {
      if (rule.action === "drop") {
        if (rule.pattern.test(message)) return { droppedBy: rule.number };
      } else message = maskText(rule, message);
    }
    let logStream = maskedStreams.get(event.logStream);
    if (logStream === undefined) {
      logStream = event.logStream;
      for (const rule of rules) if (rule.action === "mask") logStream = maskText(rule, logStream);
      maskedStreams.set(event.logStream, logStream);
    }
    if (message === event.message && logStream === event.logStream) return { event };
    return { event: { ...event, message, logStream } };
  }

  /** The events of one group as shipped, and how many each drop rule took out. */
  shape(logGroup: string, events: readonly LogEvent[]): ShapedEvents {
    const dropped: Record<string, number> = {};
    if (this.#forGroup(logGroup).length === 0) return { events: [...events], dropped };
    const kept: LogEvent[] = [];
    const maskedStreams = new Map<string, string>();
    for (const event of events) {
      const outcome = this.apply(logGroup, event, maskedStreams);
      if ("event" in outcome) kept.push(outcome.event);
      else dropped[`rule ${outcome.droppedBy}`] = (dropped[`rule ${outcome.droppedBy}`] ?? 0) + 1;
    }
    return { events: kept, dropped };
  }

  #forGroup(logGroup: string): CompiledRule[] {
    let rules = this.#byGroup.get(logGroup);
    if (!rules) {
      rules = this.#rules.filter((rule) => !rule.logGroups || rule.logGroups.test(logGroup));
      this.#byGroup.set(logGroup, rules);
    }
    return rules;
  }
}

function maskText(rule: CompiledRule, text: string): string {
  if (text === "" || (rule.mayMatch && !rule.mayMatch(text))) return text;
  if (rule.fast && text.length <= FAST_MASK_MAX_CHARS) return text.replace(rule.fast, rule.replacement);
  // test() runs on RE2's DFA without capture groups; most lines have nothing to mask.
  if (!rule.pattern.test(text)) return text;
  return rule.pattern.matcher(text).replaceAll(rule.replacement);
}

/** A built-in pattern for V8: RE2's leading `(?i)` becomes the `i` flag. */
export function v8Pattern(pattern: string): RegExp {
  const caseless = pattern.startsWith("(?i)");
  return new RegExp(caseless ? pattern.slice(4) : pattern, caseless ? "gi" : "g");
}

/** Compiles one rule (a builtin "all" gives one compiled rule per built-in mask, same number). */
function compileRule(
  spec: unknown,
  number: number,
  problem: (text: string) => void,
): CompiledRule[] | undefined {
  const parsed = ruleSchema.safeParse(spec);
  if (!parsed.success) {
    problem(`expected one of ${RULE_SHAPES}, got ${JSON.stringify(spec)}`);
    return undefined;
  }
  const rule = parsed.data as RuleSpec;
  const logGroups =
    rule.logGroups === undefined ? undefined : compilePattern(rule.logGroups, "logGroups", problem);
  if (rule.logGroups !== undefined && !logGroups) return undefined;
  const scope = logGroups ? { logGroups } : {};
  if ("builtin" in rule) {
    const names = rule.builtin === "all" ? BUILTIN_MASK_NAMES : [rule.builtin];
    const description = `mask ${names.join(", ")}`;
    return names.map((name) => ({
      number,
      action: "mask",
      description,
      pattern: RE2JS.compile(BUILTIN_MASKS[name].pattern),
      replacement: BUILTIN_MASKS[name].replacement,
      mayMatch: BUILTIN_MASKS[name].mayMatch,
      fast: v8Pattern(BUILTIN_MASKS[name].pattern),
      ...scope,
    }));
  }
  const pattern = compilePattern(rule.pattern, "pattern", problem);
  if (!pattern) return undefined;
  if (rule.action === "drop") {
    return [
      { number, action: "drop", description: `drop /${rule.pattern}/`, pattern, replacement: "", ...scope },
    ];
  }
  const replacement = rule.replacement ?? DEFAULT_MASK_REPLACEMENT;
  return [
    {
      number,
      action: "mask",
      description: `mask /${rule.pattern}/ -> ${JSON.stringify(replacement)}`,
      pattern,
      replacement,
      ...scope,
    },
  ];
}

function compilePattern(source: string, field: string, problem: (text: string) => void): RE2JS | undefined {
  return compileRe2(source, `${field} ${JSON.stringify(source)}`, problem);
}

/** Adds per-rule drop counts into a running total. */
export function addDropped(into: Record<string, number>, add: Readonly<Record<string, number>>): void {
  for (const [rule, count] of Object.entries(add)) into[rule] = (into[rule] ?? 0) + count;
}
