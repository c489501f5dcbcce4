import { randomBytes } from "node:crypto";
import snappy from "snappyjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import { queryRange } from "../helpers/loki.ts";
import { encodePushRequest } from "./contract-runner.ts";
import { nsAgo, pushJson } from "./push-client.ts";

const HOUR_MS = 3_600_000;

function tenantName(): string {
  return `t-${randomBytes(4).toString("hex")}`;
}

function window() {
  const now = BigInt(Date.now()) * 1_000_000n;
  return { start: now - 2n * 3_600_000_000_000n, end: now + 60_000_000_000n };
}

async function lines(server: LokiTestServer, tenant: string, query = '{job="t"}'): Promise<string[]> {
  const streams = await queryRange(server.url, tenant, query, {
    ...window(),
    limit: 1000,
    direction: "forward",
  });
  return streams.flatMap((s) => s.values.map((v) => v[1])).sort();
}

describe("Loki test server", () => {
  let server: LokiTestServer;

  beforeAll(async () => {
    server = await startLokiTestServer({ overrides: { tiny: { maxLineSize: 10 } } });
  });
  afterAll(async () => {
    await server?.close();
  });

  describe("fault injection", () => {
    it("answers the injected status `times` times without storing, then ingests again", async () => {
      const tenant = tenantName();
      server.setFault({ kind: "status", status: 503, body: "overloaded\n", times: 2 });
      const first = await pushJson(server.url, tenant, [{ stream: { job: "t" }, values: [[nsAgo(0), "a"]] }]);
      const second = await pushJson(server.url, tenant, [
        { stream: { job: "t" }, values: [[nsAgo(0), "b"]] },
      ]);
      const third = await pushJson(server.url, tenant, [{ stream: { job: "t" }, values: [[nsAgo(0), "c"]] }]);
      expect([first, second, third]).toEqual([
        { status: 503, body: "overloaded\n" },
        { status: 503, body: "overloaded\n" },
        { status: 204, body: "" },
      ]);
      expect(await lines(server, tenant)).toEqual(["c"]);
    });

    it("keeps a status fault without `times` until cleared, and never affects queries", async () => {
      const tenant = tenantName();
      await pushJson(server.url, tenant, [{ stream: { job: "t" }, values: [[nsAgo(0), "before"]] }]);
      server.setFault({ kind: "status", status: 500 });
      try {
        for (let i = 0; i < 3; i++) {
          const answer = await pushJson(server.url, tenant, [
            { stream: { job: "t" }, values: [[nsAgo(0), `x${i}`]] },
          ]);
          expect(answer).toEqual({ status: 500, body: "injected fault: HTTP 500\n" });
        }
        expect(await lines(server, tenant)).toEqual(["before"]);
      } finally {
        server.setFault();
      }
      const after = await pushJson(server.url, tenant, [
        { stream: { job: "t" }, values: [[nsAgo(0), "after"]] },
      ]);
      expect(after.status).toBe(204);
    });

    it("delays pushes by the injected latency", async () => {
      const tenant = tenantName();
      server.setFault({ kind: "latency", ms: 300 });
      try {
        const started = performance.now();
        const answer = await pushJson(server.url, tenant, [
          { stream: { job: "t" }, values: [[nsAgo(0), "slow"]] },
        ]);
        expect(answer.status).toBe(204);
        expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      } finally {
        server.setFault();
      }
      expect(await lines(server, tenant)).toEqual(["slow"]);
    });

    it("resets the connection without an answer and stores nothing", async () => {
      const tenant = tenantName();
      server.setFault({ kind: "reset" });
      try {
        await expect(
          pushJson(server.url, tenant, [{ stream: { job: "t" }, values: [[nsAgo(0), "lost"]] }]),
        ).rejects.toThrow(/fetch failed/);
      } finally {
        server.setFault();
      }
      expect(await lines(server, tenant)).toEqual([]);
    });
  });

  describe("stop and restart", () => {
    it("refuses connections while stopped and keeps the data across a restart on the same port", async () => {
      const own = await startLokiTestServer();
      try {
        const tenant = tenantName();
        await pushJson(own.url, tenant, [{ stream: { job: "t" }, values: [[nsAgo(1000), "kept"]] }]);
        await own.stop();
        const refused = await fetch(`${own.url}/ready`).catch((error: Error) => error);
        expect(refused).toBeInstanceOf(Error);
        expect(String((refused as Error & { cause?: { code?: string } }).cause?.code)).toBe("ECONNREFUSED");
        await own.restart();
        expect((await fetch(`${own.url}/ready`)).status).toBe(200);
        expect(await lines(own, tenant)).toEqual(["kept"]);
        await pushJson(own.url, tenant, [{ stream: { job: "t" }, values: [[nsAgo(0), "new"]] }]);
        expect(await lines(own, tenant)).toEqual(["kept", "new"]);
      } finally {
        await own.close();
      }
    });
  });

  describe("per-tenant limits", () => {
    it("applies limits given at start to that tenant only", async () => {
      const entry: [string, string] = [nsAgo(0), "eleven char"];
      const tiny = await pushJson(server.url, "tiny", [{ stream: { job: "t" }, values: [entry] }]);
      expect(tiny).toEqual({
        status: 400,
        body:
          "Max entry size '10' bytes exceeded for stream '{job=\"t\", service_name=\"t\"}' while adding an entry " +
          "with length '11' bytes\n",
      });
      const other = await pushJson(server.url, tenantName(), [{ stream: { job: "t" }, values: [entry] }]);
      expect(other.status).toBe(204);
    });

    it("applies the tenant ingestion rate set at run time: 429 with Loki's message, nothing stored", async () => {
      const tenant = tenantName();
      server.setTenantLimits(tenant, { ingestionRateMb: 0.001, ingestionBurstSizeMb: 0.001 });
      const line = "x".repeat(2000);
      const answer = await pushJson(server.url, tenant, [
        { stream: { job: "t" }, values: [[nsAgo(0), line]] },
      ]);
      expect(answer).toEqual({
        status: 429,
        body:
          `Ingestion rate limit exceeded for user ${tenant} (limit: 1048 bytes/sec) while attempting to ingest '1' ` +
          "lines totaling '2000' bytes, reduce log volume or contact your Loki administrator to see if the limit " +
          "can be increased\n",
      });
      expect(await lines(server, tenant)).toEqual([]);
    });

    it("refills the tenant token bucket at the ingestion rate", async () => {
      const tenant = tenantName();
      // 1 KiB/s, burst 10 KiB: after one 6 KB push, 4,240 bytes are left; the next 6 KB push waits
      // for 1,760 more, which takes 1.72 s. A slow machine only makes the wait longer, never shorter.
      server.setTenantLimits(tenant, { ingestionRateMb: 1 / 1024, ingestionBurstSizeMb: 10 / 1024 });
      const push = async (text: string) =>
        (
          await pushJson(server.url, tenant, [
            { stream: { job: "t" }, values: [[nsAgo(0), text.repeat(6000)]] },
          ])
        ).status;
      const started = Date.now();
      expect(await push("a")).toBe(204);
      expect(await push("b")).toBe(429);
      // A refused push takes no tokens: ask again until the bucket has refilled.
      while ((await push("c")) === 429) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(Date.now() - started).toBeGreaterThanOrEqual(1700);
      expect(await lines(server, tenant)).toEqual(["a".repeat(6000), "c".repeat(6000)]);
    });

    it("applies the per-stream rate limit in the ingester: 429 listing the entries, other streams stored", async () => {
      const tenant = tenantName();
      server.setTenantLimits(tenant, { perStreamRateLimit: 1000, perStreamRateLimitBurst: 1000 });
      const answer = await pushJson(server.url, tenant, [
        { stream: { job: "t", n: "big" }, values: [[nsAgo(0), "x".repeat(1500)]] },
        { stream: { job: "t", n: "small" }, values: [[nsAgo(0), "small"]] },
        { stream: { job: "t", n: "big2" }, values: [[nsAgo(0), "y".repeat(1500)]] },
      ]);
      expect(answer.status).toBe(429);
      expect(answer.body).toMatch(
        /^entry with timestamp .* ignored, reason: 'Per stream rate limit exceeded/,
      );
      expect(answer.body).toContain(
        `user '${tenant}', total ignored: 1 out of 1 for stream: {job="t", n="big2", service_name="t"}\n`,
      );
      expect(await lines(server, tenant)).toEqual(["small"]);
    });

    it("uses a narrower out-of-order window when the tenant has one", async () => {
      const tenant = tenantName();
      server.setTenantLimits(tenant, { outOfOrderWindowMs: 60_000 });
      await pushJson(server.url, tenant, [{ stream: { job: "t" }, values: [[nsAgo(0), "newest"]] }]);
      const late = await pushJson(server.url, tenant, [
        { stream: { job: "t" }, values: [[nsAgo(120_000), "late"]] },
      ]);
      expect(late.status).toBe(400);
      expect(late.body).toMatch(/^entry with timestamp .* ignored, reason: 'entry too far behind/);
      expect(await lines(server, tenant)).toEqual(["newest"]);
    });
  });

  describe("ingestion details not covered by the captured cases", () => {
    it("parses protobuf label strings like Loki: empty labels accepted, a bad name fails the request", async () => {
      const tenant = tenantName();
      const pushProto = async (labels: string) => {
        const context = { run: "r", tenant, now: BigInt(Date.now()) * 1_000_000n };
        const body = encodePushRequest(
          { compression: "snappy", streams: [{ labels, entries: [{ ts: "now", line: labels }] }] },
          context,
        );
        const response = await fetch(`${server.url}/loki/api/v1/push`, {
          method: "POST",
          headers: { "Content-Type": "application/x-protobuf", "X-Scope-OrgID": tenant },
          body: snappy.compress(Buffer.from(body)),
        });
        return { status: response.status, body: await response.text() };
      };
      expect(await pushProto('{job="t", team-name="x"}')).toEqual({
        status: 400,
        body: "couldn't parse labels: 1:15: parse error: unexpected character inside braces: '-'\n",
      });
      expect(await pushProto("{}")).toEqual({ status: 204, body: "" });
      expect(await pushProto('{job="t", a="1"}')).toEqual({ status: 204, body: "" });
      const streams = await queryRange(server.url, tenant, '{service_name=~".+"}', window());
      expect(
        streams.map((s) => s.stream).sort((a, b) => Object.keys(a).length - Object.keys(b).length),
      ).toEqual([
        { service_name: "unknown_service", detected_level: "unknown" },
        { job: "t", a: "1", service_name: "t", detected_level: "unknown" },
      ]);
    });

    it("lists at most 10 refused entries but counts all of them", async () => {
      const tenant = tenantName();
      const values: Array<[string, string]> = [[nsAgo(0), "newest"]];
      for (let i = 0; i < 12; i++) values.push([nsAgo(2 * HOUR_MS + i * 1000), `old ${i}`]);
      const answer = await pushJson(server.url, tenant, [{ stream: { job: "t" }, values }]);
      expect(answer.status).toBe(400);
      const body = answer.body.split("\n");
      expect(body.filter((l) => l.startsWith("entry with timestamp"))).toHaveLength(10);
      expect(body.at(-2)).toBe(
        `user '${tenant}', total ignored: 12 out of 13 for stream: {job="t", service_name="t"}`,
      );
    });

    it("stores gzip JSON pushes with structured metadata and filters on it", async () => {
      const tenant = tenantName();
      const answer = await pushJson(
        server.url,
        tenant,
        [
          {
            stream: { job: "t" },
            values: [
              [nsAgo(2000), "with id", { request_id: "r1" }],
              [nsAgo(1000), "other id", { request_id: "r2" }],
            ],
          },
        ],
        { gzip: true },
      );
      expect(answer.status).toBe(204);
      const streams = await queryRange(server.url, tenant, '{job="t"} | request_id="r1"', window());
      expect(streams).toEqual([
        {
          stream: { job: "t", service_name: "t", request_id: "r1", detected_level: "unknown" },
          values: [[expect.any(String), "with id"]],
        },
      ]);
    });

    it("accepts RFC3339 query bounds and lists labels, label values and series", async () => {
      const tenant = tenantName();
      await pushJson(server.url, tenant, [
        { stream: { job: "t", env: "a" }, values: [[nsAgo(1000), "one"]] },
        { stream: { job: "t", env: "b" }, values: [[nsAgo(1000), "two"]] },
      ]);
      const headers = { "X-Scope-OrgID": tenant };
      const start = new Date(Date.now() - HOUR_MS).toISOString();
      const end = new Date(Date.now() + 60_000).toISOString();
      const range = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
      const query = await fetch(
        `${server.url}/loki/api/v1/query_range?query=${encodeURIComponent('{env="b"}')}&${range}`,
        {
          headers,
        },
      );
      const result = (await query.json()) as { data: { result: Array<{ values: string[][] }> } };
      expect(result.data.result.map((s) => s.values[0]?.[1])).toEqual(["two"]);
      const labels = await (await fetch(`${server.url}/loki/api/v1/labels?${range}`, { headers })).json();
      expect(labels).toEqual({ status: "success", data: ["env", "job", "service_name"] });
      const values = await (
        await fetch(`${server.url}/loki/api/v1/label/env/values?${range}`, { headers })
      ).json();
      expect(values).toEqual({ status: "success", data: ["a", "b"] });
      const series = await (
        await fetch(`${server.url}/loki/api/v1/series?match[]=${encodeURIComponent('{env="a"}')}&${range}`, {
          headers,
        })
      ).json();
      expect(series).toEqual({ status: "success", data: [{ env: "a", job: "t", service_name: "t" }] });
    });

    it("refuses a new stream over the tenant's active stream limit with Loki's 429, existing streams still take pushes", async () => {
      const tenant = tenantName();
      server.setTenantLimits(tenant, { maxGlobalStreamsPerUser: 2 });
      for (const n of ["1", "2"]) {
        const answer = await pushJson(server.url, tenant, [
          { stream: { job: "t", n }, values: [[nsAgo(0), n]] },
        ]);
        expect(answer.status).toBe(204);
      }
      const third = await pushJson(server.url, tenant, [
        { stream: { job: "t", n: "3" }, values: [[nsAgo(0), "3"]] },
      ]);
      expect(third).toEqual({
        status: 429,
        body:
          'Maximum active stream limit exceeded when trying to create stream {job="t", n="3", service_name="t"}, ' +
          "reduce the number of active streams (reduce labels or reduce label values), or contact your Loki " +
          `administrator to see if the limit can be increased, user: '${tenant}'\n`,
      });
      const existing = await pushJson(server.url, tenant, [
        { stream: { job: "t", n: "1" }, values: [[nsAgo(0), "more"]] },
      ]);
      expect(existing.status).toBe(204);
      expect(await lines(server, tenant)).toEqual(["1", "2", "more"]);
    });

    it("answers instant log queries with Loki 3's 400", async () => {
      const response = await fetch(
        `${server.url}/loki/api/v1/query?query=${encodeURIComponent('{job="t"}')}`,
        {
          headers: { "X-Scope-OrgID": tenantName() },
        },
      );
      expect(response.status).toBe(400);
      expect(await response.text()).toBe(
        "log queries are not supported as an instant query type, please change your query to a range query type",
      );
    });

    it("refuses queries it cannot evaluate with a clear 400 instead of a wrong answer", async () => {
      const query = 'sum(count_over_time({job="t"}[5m])) / 2';
      const response = await fetch(`${server.url}/loki/api/v1/query?query=${encodeURIComponent(query)}`, {
        headers: { "X-Scope-OrgID": tenantName() },
      });
      expect(response.status).toBe(400);
      expect(await response.text()).toBe(`not supported by this test server: ${query}`);
    });
  });
});
