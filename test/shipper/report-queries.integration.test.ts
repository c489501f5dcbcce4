import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { SAMPLE_FUNCTIONS } from "../../scripts/demo/sample-functions.ts";
import { uniqueName } from "../helpers/aws.ts";
import { seedLogGroup } from "../helpers/log-groups.ts";
import { instantQuery, lokiEnv, startTestLoki, type TestLoki } from "../helpers/loki.ts";
import { createTestBucket } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";

/**
 * The README's LogQL on Lambda report figures, run as written there against the Loki test server,
 * over the demo's two sample functions (text REPORT lines and JSON platform.report records)
 * shipped by the live shipper. The expected numbers are worked out from the lines themselves.
 */
let loki: TestLoki;
const sampled: { name: string; reports: Report[] }[] = [];
const queryTime = Date.now();

interface Report {
  durationMs: number;
  memorySizeMb: number;
  maxMemoryUsedMb: number;
  initDurationMs?: number;
}

/** The README's LogQL examples: the lines of its `logql` code block after each `# comment`. */
function readmeQueries(): Map<string, string> {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const block = /```logql\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error("README.md has no ```logql block");
  const queries = new Map<string, string>();
  let comment = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("#")) comment = line.slice(1).trim();
    else if (line.trim() !== "") queries.set(comment, line.trim());
  }
  return queries;
}

/** The figures of a report line, read the plain way: a regex on the text, JSON.parse on the JSON. */
function reportOf(line: string): Report | undefined {
  if (line.startsWith("REPORT")) {
    const figure = (name: string) => {
      const match = new RegExp(`${name}: ([\\d.]+)`).exec(line);
      return match ? Number(match[1]) : undefined;
    };
    const init = figure("Init Duration");
    return {
      durationMs: figure("\tDuration") as number,
      memorySizeMb: figure("Memory Size") as number,
      maxMemoryUsedMb: figure("Max Memory Used") as number,
      ...(init === undefined ? {} : { initDurationMs: init }),
    };
  }
  if (!line.includes('"platform.report"')) return undefined;
  const { metrics } = JSON.parse(line).record;
  return {
    durationMs: metrics.durationMs,
    memorySizeMb: metrics.memorySizeMB,
    maxMemoryUsedMb: metrics.maxMemoryUsedMB,
    ...(metrics.initDurationMs === undefined ? {} : { initDurationMs: metrics.initDurationMs }),
  };
}

/** Prometheus' quantile: linear interpolation between the closest ranks. */
function quantile(q: number, values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = q * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.min(lower + 1, sorted.length - 1);
  return (sorted[lower] as number) + ((sorted[upper] as number) - (sorted[lower] as number)) * (rank - lower);
}

function byName(samples: { metric: Record<string, string>; value: string }[]): Record<string, number> {
  return Object.fromEntries(samples.map((sample) => [sample.metric.name, Number(sample.value)]));
}

beforeAll(async () => {
  loki = await startTestLoki();
  const bucket = await createTestBucket();
  for (const sample of SAMPLE_FUNCTIONS) {
    // One invocation a minute over the last 50 minutes, as the demo's schedule produces them.
    const firstMinute = Math.floor(queryTime / 60_000) * 60_000 - 50 * 60_000;
    const lines = Array.from({ length: 50 }, (_, minute) => firstMinute + minute * 60_000).flatMap(
      (invokedAt) =>
        sample.invocationLines(invokedAt).map((message, index) => ({
          timestamp: invokedAt + index,
          message,
          logStream: "2026/11/28/[$LATEST]0f1e2d3c4b5a",
        })),
    );
    const logGroup = `/aws/lambda/${uniqueName(sample.tags.name ?? "fun")}`;
    const events: LogEvent[] = await seedLogGroup(logGroup, sample.tags, lines);
    await shipLive(logGroup, events, lokiEnv(loki), bucket);
    const reports = events.flatMap((event) => reportOf(event.message) ?? []);
    sampled.push({ name: sample.tags.name as string, reports });
  }
});
afterAll(async () => {
  await loki?.close();
});

describe("the README's LogQL on Lambda report figures", () => {
  const queries = readmeQueries();
  const run = async (comment: string) => {
    const query = queries.get(comment);
    if (!query) throw new Error(`README.md has no LogQL example under "# ${comment}"`);
    return byName(await instantQuery(loki, query, queryTime));
  };

  it("covers both log formats: text REPORT lines and JSON platform.report records", () => {
    expect(sampled.map((sample) => sample.reports.length)).toEqual([50, 50]);
  });

  it("p99 duration per function", async () => {
    const expected = Object.fromEntries(
      sampled.map(({ name, reports }) => [
        name,
        quantile(
          0.99,
          reports.map((report) => report.durationMs),
        ),
      ]),
    );
    const answer = await run("p99 duration per function over the last hour");
    expect(Object.keys(answer).sort()).toEqual(["fun-node", "fun-python"]);
    for (const name of Object.keys(expected)) expect(answer[name]).toBeCloseTo(expected[name] as number, 6);
  });

  it("functions above 90 % of their memory size, with how many invocations", async () => {
    const expected = Object.fromEntries(
      sampled.flatMap(({ name, reports }) => {
        const near = reports.filter((report) => report.maxMemoryUsedMb / report.memorySizeMb >= 0.9).length;
        return near > 0 ? [[name, near]] : [];
      }),
    );
    expect(Object.keys(expected)).toEqual(["fun-node"]);
    expect(await run("invocations above 90 % of their memory size, per function")).toEqual(expected);
  });

  it("mean duration per function", async () => {
    const expected = Object.fromEntries(
      sampled.map(({ name, reports }) => [
        name,
        reports.reduce((sum, report) => sum + report.durationMs, 0) / reports.length,
      ]),
    );
    const answer = await run("mean duration per function (filter first, see below)");
    for (const name of Object.keys(expected)) expect(answer[name]).toBeCloseTo(expected[name] as number, 6);
  });

  it("the longest cold start per function", async () => {
    const expected = Object.fromEntries(
      sampled.flatMap(({ name, reports }) => {
        const inits = reports.flatMap((report) => report.initDurationMs ?? []);
        return inits.length > 0 ? [[name, Math.max(...inits)]] : [];
      }),
    );
    expect(Object.keys(expected).length).toBeGreaterThan(0);
    expect(await run("the longest cold start (init duration) per function")).toEqual(expected);
  });
});
