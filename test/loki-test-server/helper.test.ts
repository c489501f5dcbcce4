import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import { ExternalLokiError, externalLoki, queryRangeAll, startTestLoki } from "../helpers/loki.ts";
import { pushJson } from "./push-client.ts";

describe("test helper for Loki", () => {
  let server: LokiTestServer;
  beforeAll(async () => {
    server = await startLokiTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("pages over more than 5000 entries, also when a timestamp is shared across a page boundary", async () => {
    const tenant = `paging-${Date.now()}`;
    const base = BigInt(Date.now() - 60_000) * 1_000_000n;
    // 4999 distinct timestamps, then 3 entries sharing one timestamp: the page boundary falls inside them.
    const values: Array<[string, string]> = [];
    for (let i = 0; i < 4999; i++) values.push([(base + BigInt(i)).toString(), `line ${i}`]);
    for (let k = 0; k < 3; k++) values.push([(base + 5000n).toString(), `tie ${k}`]);
    for (let i = 0; i < 1200; i++) values.push([(base + 6000n + BigInt(i)).toString(), `after ${i}`]);
    expect((await pushJson(server.url, tenant, [{ stream: { job: "p" }, values }])).status).toBe(204);

    const streams = await queryRangeAll(server.url, tenant, '{job="p"}', {
      start: base,
      end: base + 1_000_000_000n,
    });
    expect(streams).toHaveLength(1);
    expect(streams[0]?.values).toEqual(values);
  });

  // These two need the test server itself: with LOKI_TEST_URL set, startTestLoki() returns the external Loki.
  it.skipIf(externalLoki)("gives each call its own tenant on the test server", async () => {
    const first = await startTestLoki();
    const second = await startTestLoki();
    try {
      expect(first.tenant).not.toBe(second.tenant);
      expect(first.external).toBe(false);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it.skipIf(externalLoki)("sets the limits given for its own tenant", async () => {
    const loki = await startTestLoki({ limits: { maxLineSize: 3 } });
    try {
      const answer = await pushJson(loki.url, loki.tenant, [
        { stream: { job: "l" }, values: [[`${Date.now()}000000`, "long"]] },
      ]);
      expect(answer.status).toBe(400);
    } finally {
      await loki.close();
    }
  });

  it("with LOKI_TEST_URL, queries that Loki and refuses test-server-only operations with a clear error", async () => {
    const previous = { url: process.env.LOKI_TEST_URL, tenant: process.env.LOKI_TEST_TENANT };
    process.env.LOKI_TEST_URL = server.url;
    process.env.LOKI_TEST_TENANT = "external-tenant";
    try {
      const loki = await startTestLoki();
      expect(loki).toMatchObject({ url: server.url, tenant: "external-tenant", external: true });
      await pushJson(server.url, "external-tenant", [
        { stream: { job: "e" }, values: [[`${Date.now()}000000`, "x"]] },
      ]);
      const now = BigInt(Date.now()) * 1_000_000n;
      const streams = await loki.queryRange('{job="e"}', {
        start: now - 60_000_000_000n,
        end: now + 1_000_000_000n,
      });
      expect(streams.map((s) => s.values.length)).toEqual([1]);
      expect(() => loki.setFault({ kind: "reset" })).toThrow(ExternalLokiError);
      expect(() => loki.setFault({ kind: "reset" })).toThrow(/only possible on the Loki test server/);
      expect(() => loki.stop()).toThrow(ExternalLokiError);
      await expect(startTestLoki({ limits: { maxLineSize: 1 } })).rejects.toThrow(ExternalLokiError);
    } finally {
      if (previous.url === undefined) delete process.env.LOKI_TEST_URL;
      else process.env.LOKI_TEST_URL = previous.url;
      if (previous.tenant === undefined) delete process.env.LOKI_TEST_TENANT;
      else process.env.LOKI_TEST_TENANT = previous.tenant;
    }
  });
});
