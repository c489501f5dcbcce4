import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import { parseOverrides } from "../../loki-test-server/overrides-file.ts";
import { queryRange } from "../helpers/loki.ts";
import { nsAgo, pushJson } from "./push-client.ts";

/**
 * Per-stream ingester refusals in a push of several streams, as a real Loki 3.4.6 answers them:
 * its ingester keeps only the last stream's error, so a refused stream followed by a fine one
 * gives 204 (the refused entries are dropped), and a refused last stream gives that stream's error.
 * The captured contract has this for the active-stream limit (c39) with the default 30m idle
 * period; these tests use a short idle period and the per-stream rate limit.
 */
const IDLE_MS = 400;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function tenantName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

function streamLimitBody(tenant: string, n: string): string {
  return (
    `Maximum active stream limit exceeded when trying to create stream {job="t", n="${n}", service_name="t"}, ` +
    "reduce the number of active streams (reduce labels or reduce label values), or contact your Loki " +
    `administrator to see if the limit can be increased, user: '${tenant}'\n`
  );
}

async function storedByStream(server: LokiTestServer, tenant: string): Promise<Record<string, string[]>> {
  const now = BigInt(Date.now()) * 1_000_000n;
  const streams = await queryRange(server.url, tenant, '{job="t"}', {
    start: now - 3_600_000_000_000n,
    end: now + 60_000_000_000n,
    limit: 1000,
    direction: "forward",
  });
  const byStream: Record<string, string[]> = {};
  for (const stream of streams) {
    const n = stream.stream.n as string;
    byStream[n] = [...(byStream[n] ?? []), ...stream.values.map((value) => value[1])];
  }
  return byStream;
}

function entry(n: string, line: string) {
  return { stream: { job: "t", n }, values: [[nsAgo(0), line]] as Array<[string, string]> };
}

describe("Loki test server: refusals of one stream in a multi-stream push", () => {
  let server: LokiTestServer;
  const streamLimited = tenantName("two-streams");
  const yamlLimited = tenantName("yaml-one-stream");
  const rateLimited = tenantName("stream-rate-1kb");

  beforeAll(async () => {
    const fromYaml = parseOverrides(
      `overrides:\n  ${yamlLimited}:\n    max_global_streams_per_user: 1\n` +
        `  ${rateLimited}:\n    per_stream_rate_limit: 1KB\n    per_stream_rate_limit_burst: 1KB\n`,
    );
    server = await startLokiTestServer({
      chunkIdlePeriodMs: IDLE_MS,
      overrides: { ...fromYaml, [streamLimited]: { maxGlobalStreamsPerUser: 2 } },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("active-stream limit: [new, existing] answers 204 and drops the new stream, [existing, new] answers 429", async () => {
    const tenant = streamLimited;
    expect(await pushJson(server.url, tenant, [entry("1", "one"), entry("2", "two")])).toEqual({
      status: 204,
      body: "",
    });
    const newFirst = await pushJson(server.url, tenant, [entry("3", "refused 3"), entry("1", "one again")]);
    expect(newFirst).toEqual({ status: 204, body: "" });
    const newLast = await pushJson(server.url, tenant, [entry("2", "two again"), entry("4", "refused 4")]);
    expect(newLast).toEqual({ status: 429, body: streamLimitBody(tenant, "4") });
    expect(await storedByStream(server, tenant)).toEqual({
      "1": ["one", "one again"],
      "2": ["two", "two again"],
    });
  });

  it("active-stream limit: a stream idle for chunk_idle_period no longer counts, so a new one is accepted", async () => {
    const tenant = streamLimited;
    await sleep(IDLE_MS + 100);
    expect(await pushJson(server.url, tenant, [entry("5", "after idle")])).toEqual({ status: 204, body: "" });
    expect(await pushJson(server.url, tenant, [entry("6", "second after idle")])).toEqual({
      status: 204,
      body: "",
    });
    expect(await pushJson(server.url, tenant, [entry("7", "third after idle")])).toEqual({
      status: 429,
      body: streamLimitBody(tenant, "7"),
    });
  });

  it("active-stream limit: max_global_streams_per_user from a runtime-overrides YAML applies to that tenant", async () => {
    const tenant = yamlLimited;
    expect((await pushJson(server.url, tenant, [entry("1", "first")])).status).toBe(204);
    expect(await pushJson(server.url, tenant, [entry("2", "second")])).toEqual({
      status: 429,
      body: streamLimitBody(tenant, "2"),
    });
  });

  it("per-stream rate limit: [A over its rate, B] answers 204 with only B stored", async () => {
    const tenant = rateLimited;
    const answer = await pushJson(server.url, tenant, [entry("a", "x".repeat(1500)), entry("b", "small b")]);
    expect(answer).toEqual({ status: 204, body: "" });
    expect(await storedByStream(server, tenant)).toEqual({ b: ["small b"] });
  });

  it("per-stream rate limit: [B, C over its rate] answers 429 naming C, B stored", async () => {
    const tenant = rateLimited;
    const answer = await pushJson(server.url, tenant, [entry("b", "b again"), entry("c", "y".repeat(1500))]);
    expect(answer.status).toBe(429);
    const lines = answer.body.split("\n");
    expect(lines[0]).toMatch(
      /^entry with timestamp \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC ignored, reason: 'Per stream rate limit exceeded \(limit: 1\.0 kB\/sec\) while attempting to ingest for stream '\{job="t", n="c", service_name="t"\}' totaling 1\.5 kB, /,
    );
    expect(lines.slice(1)).toEqual([
      `user '${tenant}', total ignored: 1 out of 1 for stream: {job="t", n="c", service_name="t"}`,
      "",
    ]);
    expect(await storedByStream(server, tenant)).toEqual({ b: ["small b", "b again"] });
  });
});
