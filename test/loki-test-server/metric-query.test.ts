import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import { formatGoFloat, stepGrid } from "../../loki-test-server/metric-query.ts";
import { queryRange } from "../helpers/loki.ts";
import { pushJson } from "./push-client.ts";

/**
 * Metric-query behaviour the captured contract does not pin down (it covers count_over_time,
 * rate, bytes_over_time, unwrap of structured metadata, aggregations and errors): unwrap of a
 * stream label, other range functions, error filters after unwrap, parsers' corner cases.
 */
const MINUTE_NS = 60_000_000_000n;

async function instant(server: LokiTestServer, tenant: string, query: string, time: bigint) {
  const url = new URL("/loki/api/v1/query", server.url);
  url.searchParams.set("query", query);
  url.searchParams.set("time", time.toString());
  const response = await fetch(url, { headers: { "X-Scope-OrgID": tenant } });
  const text = await response.text();
  if (response.status !== 200) return { status: response.status, text };
  const body = JSON.parse(text) as { data: { result: Array<{ metric: object; value: [number, string] }> } };
  return { status: 200, result: body.data.result.map((s) => ({ metric: s.metric, value: s.value[1] })) };
}

describe("Loki test server metric queries beyond the captured cases", () => {
  let server: LokiTestServer;
  const tenant = `metric-${randomBytes(4).toString("hex")}`;
  const now = (BigInt(Date.now()) / 1000n) * 1000n * 1_000_000n;

  beforeAll(async () => {
    server = await startLokiTestServer();
    const at = (minutesAgo: bigint) => (now - minutesAgo * MINUTE_NS).toString();
    const answer = await pushJson(server.url, tenant, [
      { stream: { job: "sizes", size: "40" }, values: [[at(3n), "a"]] },
      { stream: { job: "sizes", size: "2.5" }, values: [[at(2n), "bb"]] },
      {
        stream: { job: "mixed" },
        values: [
          [at(4n), "ok", { took: "10" }],
          [at(3n), "bad", { took: "n/a" }],
          [at(2n), "ok", { took: "30" }],
        ],
      },
      {
        stream: { job: "json" },
        values: [[at(1n), '{"job":"inner","list":[1,{"x":2}],"gone":null,"deep":{"a":{"b":true}}}']],
      },
      { stream: { job: "logfmt" }, values: [[at(1n), 'flag level=debug msg="a \\"quoted\\" word"']] },
    ]);
    expect(answer.status).toBe(204);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("unwraps a stream label: sum_over_time and min_over_time over all streams", async () => {
    const sum = await instant(server, tenant, 'sum(sum_over_time({job="sizes"} | unwrap size [10m]))', now);
    expect(sum).toEqual({ status: 200, result: [{ metric: {}, value: "42.5" }] });
    const min = await instant(
      server,
      tenant,
      'min_over_time({job="sizes"} | unwrap size [10m]) by (job)',
      now,
    );
    expect(min).toEqual({ status: 200, result: [{ metric: { job: "sizes" }, value: "2.5" }] });
  });

  it('answers 400 for a non-numeric unwrap value, and skips it after | __error__=""', async () => {
    const failing = await instant(
      server,
      tenant,
      'max_over_time({job="mixed"} | unwrap took [10m]) by (job)',
      now,
    );
    expect(failing.status).toBe(400);
    expect(failing.text).toMatch(
      /^pipeline error: 'SampleExtractionErr' for series: '\{__error__="SampleExtractionErr", /,
    );
    const filtered = await instant(
      server,
      tenant,
      'max_over_time({job="mixed"} | unwrap took | __error__="" [10m]) by (job)',
      now,
    );
    expect(filtered).toEqual({ status: 200, result: [{ metric: { job: "mixed" }, value: "30" }] });
  });

  it("computes bytes_rate as UTF-8 bytes per second of the range", async () => {
    const rate = await instant(server, tenant, 'sum(bytes_rate({job="sizes"}[1m]))', now - 2n * MINUTE_NS);
    expect(rate).toEqual({ status: 200, result: [{ metric: {}, value: String(2 / 60) }] });
  });

  it("| json flattens nested objects, skips arrays and nulls and renames a field that is a stream label", async () => {
    const streams = await queryRange(server.url, tenant, '{job="json"} | json', {
      start: now - 10n * MINUTE_NS,
      end: now + MINUTE_NS,
    });
    expect(streams.map((s) => s.stream)).toEqual([
      {
        deep_a_b: "true",
        detected_level: "unknown",
        job: "json",
        job_extracted: "inner",
        service_name: "json",
      },
    ]);
  });

  it("| logfmt reads quoted values and keys without a value", async () => {
    const streams = await queryRange(server.url, tenant, '{job="logfmt"} | logfmt', {
      start: now - 10n * MINUTE_NS,
      end: now + MINUTE_NS,
    });
    expect(streams.map((s) => s.stream)).toEqual([
      {
        detected_level: "debug",
        flag: "",
        job: "logfmt",
        level: "debug",
        msg: 'a "quoted" word',
        service_name: "logfmt",
      },
    ]);
  });

  it("formats values like Go's strconv.FormatFloat(v, 'f', -1, 64)", () => {
    expect([0.1, 1e-7, -2.5e-7, 1.5e21, 42, Number.NaN, Infinity, -Infinity].map(formatGoFloat)).toEqual([
      "0.1",
      "0.0000001",
      "-0.00000025",
      "1500000000000000000000",
      "42",
      "NaN",
      "+Inf",
      "-Inf",
    ]);
  });

  it("puts range query points on the step grid: start rounded down, end rounded up", () => {
    expect(stepGrid(65n, 185n, 60n)).toEqual([60n, 120n, 180n, 240n]);
    expect(stepGrid(60n, 180n, 60n)).toEqual([60n, 120n, 180n]);
  });
});
