import { FAST_MASK_MAX_CHARS, RuleSet } from "../functions/core/delivery/rules.ts";
import { lambdaLogStreamName, logEvents, subscriptionPayload } from "./payloads.ts";
import { fmt, markdownTable } from "./table.ts";
import { timeRuns, transformPayload } from "./transform.ts";

/**
 * What drop and mask rules cost the shipper's transform (section 1), on one payload of 10,000
 * events of 200 bytes pushed as protobuf+snappy: no rules, every built-in mask, five custom rules.
 * One line in ten carries an email address and an IPv4 address, so that masks also replace.
 */

export const RULE_SETS: { name: string; rules: unknown[] }[] = [
  { name: "no rules", rules: [] },
  { name: "built-in masks (all six)", rules: [{ action: "mask", builtin: "all" }] },
  {
    name: "five custom rules",
    rules: [
      { action: "drop", pattern: "GET /health" },
      { action: "drop", pattern: '"level":"DEBUG"' },
      { action: "mask", pattern: "(password=)\\S+", replacement: "$1***" },
      { action: "mask", pattern: "card=[0-9]{12,19}", replacement: "card=<card>" },
      { action: "mask", pattern: "(?i)(secret[_-]?key=)[A-Za-z0-9/+]+", replacement: "$1<secret>" },
    ],
  },
];

const EVENTS = 10_000;
const LINE_BYTES = 200;
const PERSONAL = " user=jane.doe@example.com ip=203.0.113.42";

export interface RulesRow {
  name: string;
  eventsPerCpuSecond: number;
  /** Events per CPU second relative to no rules. */
  relative: number;
}

function payloadWithPersonalData(): string {
  const events = logEvents(EVENTS, LINE_BYTES, Date.now() - 60_000, lambdaLogStreamName(1)).map(
    (event, index) =>
      index % 10 === 0
        ? { ...event, message: event.message.slice(0, LINE_BYTES - PERSONAL.length) + PERSONAL }
        : event,
  );
  return subscriptionPayload("/aws/lambda/fun-orders", events).awslogs.data;
}

/**
 * The worst case of the built-in masks on V8 (lines up to FAST_MASK_MAX_CHARS): every line
 * FAST_MASK_MAX_CHARS of local-part characters before an "@" that starts no email, which V8 scans quadratically.
 */
function hostilePayload(): string {
  const events = logEvents(EVENTS, LINE_BYTES, Date.now() - 60_000, lambdaLogStreamName(1)).map((event) => ({
    ...event,
    message: `${"a".repeat(FAST_MASK_MAX_CHARS - 1)}@`,
  }));
  return subscriptionPayload("/aws/lambda/fun-orders", events).awslogs.data;
}

/** Rounds over all rule sets, so that a busy moment of the machine does not fall on one set only. */
const ROUNDS = 5;

export function measureRules(): RulesRow[] {
  const data = payloadWithPersonalData();
  const cases = [
    ...RULE_SETS.map(({ name, rules }) => ({ name, payload: data, rules: RuleSet.parse(rules) })),
    {
      name: "built-in masks, worst case: every line 256 B of a…a@",
      payload: hostilePayload(),
      rules: RuleSet.parse(RULE_SETS[1]?.rules ?? []),
    },
  ];
  const cpuMs = cases.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round += 1) {
    cases.forEach(({ payload, rules }, index) => {
      const { medianCpuMs } = timeRuns(3, 1, () => transformPayload(payload, "protobuf", Date.now(), rules));
      cpuMs[index]?.push(medianCpuMs);
    });
  }
  const rates = cpuMs.map(
    (times) => (EVENTS / (times.sort((a, b) => a - b)[Math.floor(times.length / 2)] as number)) * 1000,
  );
  return cases.map(({ name }, index) => ({
    name,
    eventsPerCpuSecond: rates[index] as number,
    relative: (rates[index] as number) / (rates[0] as number),
  }));
}

export function rulesTable(rows: RulesRow[]): string {
  return markdownTable(
    ["rules (10,000 events of 200 B, protobuf+snappy)", "events/s per core (CPU)", "vs no rules"],
    rows.map((row) => [row.name, fmt.int(row.eventsPerCpuSecond), `${fmt.fixed(row.relative * 100, 0)} %`]),
  );
}

/** The rules' figures with what they mean, as BENCHMARKS.md shows them under section 1. */
export function rulesSection(rows: RulesRow[]): string {
  return `### With drop and mask rules (LOG_RULES)

The same transform on 10,000 events of 200 bytes (protobuf+snappy), one line in ten holding an email
address and an IPv4 address: no rules, every built-in mask, five custom rules (two drops, three masks,
RE2), and the built-in masks' worst case, lines of 256 "a…a@" that V8 scans quadratically before
RE2 takes over for longer lines. Medians over rounds that alternate the rule sets.

${rulesTable(rows)}`;
}
