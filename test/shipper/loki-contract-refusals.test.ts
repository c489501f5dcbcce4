import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { PushEntry } from "../../functions/core/loki/loki-push.ts";
import { attributeRefusals } from "../../functions/core/loki/loki-response.ts";

/**
 * The response parser against the 400 bodies real Loki 3.4.6 gave in the contract cases
 * (test/data/loki-contract, captured from Loki). For every single-stream push that Loki answered
 * with 400, the entries the parser says were refused must be exactly those Loki's rules refuse:
 * too old (> 7 d), too new (> 10 m ahead), line > 256 KiB, older than the stream's newest − 1 h,
 * or all of them for a request-wide error.
 */
interface ContractStep {
  id: string;
  request: { path: string; json?: { streams?: { stream: Record<string, string>; values: unknown }[] } };
  expect: { status: number; body?: string };
}
interface ContractCase {
  name: string;
  steps: ContractStep[];
}

const cases = (
  JSON.parse(readFileSync(new URL("../data/loki-contract/cases.json", import.meta.url), "utf8")) as {
    cases: ContractCase[];
  }
).cases;

const NOW = 1_795_618_291_784_654_321n;
const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};
const HOUR = UNIT_NS.h as bigint;
const WEEK = 7n * (UNIT_NS.d as bigint);
const GRACE = 10n * (UNIT_NS.m as bigint);
const MAX_LINE = 262_144;

function evaluate(expression: string): bigint {
  let ns = NOW;
  for (const [, sign, amount, unit] of expression.slice(3).matchAll(/([+-])(\d+)(ns|us|ms|s|m|h|d)/g)) {
    const delta = BigInt(amount as string) * (UNIT_NS[unit as string] as bigint);
    ns = sign === "+" ? ns + delta : ns - delta;
  }
  return ns;
}

function format(ns: bigint, fmt: string): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString();
  if (fmt === "ns") return ns.toString();
  if (fmt === "rfc3339") return `${iso.slice(0, 19)}Z`;
  if (fmt === "go") {
    const fraction = (ns % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction ? `.${fraction}` : ""} +0000 UTC`;
  }
  throw new Error(`unknown timestamp format ${fmt}`);
}

function resolve(text: string, tenant: string): string {
  return text
    .replaceAll("{{tenant}}", tenant)
    .replaceAll("{{run}}", "r20261125000000000000")
    .replace(/\{\{repeat:(.):(\d+)\}\}/g, (_, char: string, count: string) => char.repeat(Number(count)))
    .replace(
      /\{\{(?:ts|approx):([^|}]+)\|([a-z0-9]+)(?:\|[^}]+)?\}\}/g,
      (_, expression: string, fmt: string) => format(evaluate(expression), fmt),
    );
}

const wholeRequestErrors = /^(couldn't parse labels|.* has \d+ label names; limit \d+)/;

const steps = cases.flatMap((contractCase) =>
  contractCase.steps
    .filter(
      (step) =>
        step.request.path === "/loki/api/v1/push" &&
        step.expect.status === 400 &&
        step.expect.body !== undefined &&
        step.request.json?.streams?.length === 1 &&
        Array.isArray(step.request.json.streams[0]?.values) &&
        /entry|Max entry size|couldn't parse labels|label names/.test(step.expect.body),
    )
    .map((step) => ({ caseName: contractCase.name, step, contractCase })),
);

describe("attributeRefusals on Loki's own 400 bodies", () => {
  it("covers the refusal kinds of the contract", () => {
    expect(steps.map(({ caseName, step }) => `${caseName}/${step.id}`)).toEqual(
      expect.arrayContaining([
        "c05_line_size/push_262145",
        "c08_mixed_batch_one_stream/push",
        "c08b_batch_order_matters/push_descending",
        "c09_too_old/push_mixed_old_and_now",
        "c10_too_new/push_mixed_new_and_now",
        "c27_grouped_validation_errors/push_same_error_twice",
        "c03_label_name_dash/push_dash",
        "c04_label_count/push_16_labels",
      ]),
    );
  });

  it.each(
    steps.map(({ caseName, step, contractCase }) => [`${caseName}/${step.id}`, step, contractCase] as const),
  )("%s", (_name, step, contractCase) => {
    const tenant = `r20261125000000000000-${contractCase.name.slice(0, 3)}`;
    // Newest entry per stream from the earlier pushes of the case (Loki's out-of-order window).
    const newest = new Map<string, bigint>();
    for (const earlier of contractCase.steps) {
      if (earlier === step) break;
      const stream = earlier.request.json?.streams?.[0];
      if (earlier.request.path !== "/loki/api/v1/push" || !stream || !Array.isArray(stream.values)) continue;
      const key = JSON.stringify(stream.stream);
      for (const [ts] of stream.values as [string, string][]) {
        const ns = BigInt(resolve(ts, tenant));
        if (earlier.expect.status === 204 || ns >= (newest.get(key) ?? 0n) - HOUR) {
          if (ns > (newest.get(key) ?? 0n)) newest.set(key, ns);
        }
      }
    }
    const stream = step.request.json?.streams?.[0] as {
      stream: Record<string, string>;
      values: [string, string][];
    };
    const entries: PushEntry[] = stream.values.map(([ts, line]) => ({
      ns: BigInt(resolve(ts, tenant)),
      line: resolve(line, tenant),
    }));
    const body = resolve(step.expect.body as string, tenant);

    const expected = new Set<number>();
    let streamNewest = newest.get(JSON.stringify(stream.stream)) ?? 0n;
    entries.forEach((entry, index) => {
      const refused =
        wholeRequestErrors.test(body) ||
        entry.ns < NOW - WEEK ||
        entry.ns > NOW + GRACE ||
        Buffer.byteLength(entry.line) > MAX_LINE ||
        entry.ns < streamNewest - HOUR;
      if (refused) expected.add(index);
      else if (entry.ns > streamNewest) streamNewest = entry.ns;
    });

    const attribution = attributeRefusals(entries, body);

    expect(attribution, body).toBeDefined();
    expect(new Set(attribution?.keys())).toEqual(expected);
  });
});
