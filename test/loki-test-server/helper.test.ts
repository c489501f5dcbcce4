import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import {
  ExternalLokiError,
  externalLoki,
  NO_TENANT_LIMITS_REASON,
  noTenantLimits,
  queryRangeAll,
  startTestLoki,
} from "../helpers/loki.ts";
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

  const namedTenant = process.env.LOKI_TEST_TENANT;
  it.skipIf(externalLoki && namedTenant)(
    `gives each call its own tenant${externalLoki && namedTenant ? " (LOKI_TEST_TENANT names one for every call)" : ""}`,
    async () => {
      const first = await startTestLoki();
      const second = await startTestLoki();
      try {
        expect(first.tenant).not.toBe(second.tenant);
        expect([first.external, second.external]).toEqual([externalLoki, externalLoki]);
      } finally {
        await Promise.all([first.close(), second.close()]);
      }
    },
  );

  it.skipIf(noTenantLimits)(
    `sets the limits given for its own tenant (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      const loki = await startTestLoki({ limits: { max_line_size: 3 } });
      try {
        const answer = await pushJson(loki.url, loki.tenant, [
          { stream: { job: "l" }, values: [[`${Date.now()}000000`, "long"]] },
        ]);
        expect(answer.status).toBe(400);
      } finally {
        await loki.close();
      }
    },
  );

  it("with LOKI_TEST_URL, pushes through the fault proxy to that Loki, and needs LOKI_TEST_OVERRIDES for limits", async () => {
    const previous = {
      url: process.env.LOKI_TEST_URL,
      tenant: process.env.LOKI_TEST_TENANT,
      overrides: process.env.LOKI_TEST_OVERRIDES,
    };
    process.env.LOKI_TEST_URL = server.url;
    process.env.LOKI_TEST_TENANT = "external-tenant";
    delete process.env.LOKI_TEST_OVERRIDES;
    const loki = await startTestLoki();
    try {
      expect(loki).toMatchObject({ lokiUrl: server.url, tenant: "external-tenant", external: true });
      expect(loki.url).not.toBe(server.url);
      expect(
        (
          await pushJson(loki.url, "external-tenant", [
            { stream: { job: "e" }, values: [[`${Date.now()}000000`, "x"]] },
          ])
        ).status,
      ).toBe(204);
      const now = BigInt(Date.now()) * 1_000_000n;
      const streams = await loki.queryRange('{job="e"}', {
        start: now - 60_000_000_000n,
        end: now + 1_000_000_000n,
      });
      expect(streams.map((s) => s.values.length)).toEqual([1]);
      await loki.stop();
      await expect(pushJson(loki.url, "external-tenant", [])).rejects.toThrow();
      await loki.restart();
      await expect(loki.setTenantLimits("other", { max_line_size: 1 })).rejects.toThrow(
        /needs? LOKI_TEST_OVERRIDES|without LOKI_TEST_OVERRIDES/,
      );
      await expect(startTestLoki({ limits: { max_line_size: 1 } })).rejects.toThrow(ExternalLokiError);
    } finally {
      await loki.close();
      if (previous.url === undefined) delete process.env.LOKI_TEST_URL;
      else process.env.LOKI_TEST_URL = previous.url;
      if (previous.tenant === undefined) delete process.env.LOKI_TEST_TENANT;
      else process.env.LOKI_TEST_TENANT = previous.tenant;
      if (previous.overrides !== undefined) process.env.LOKI_TEST_OVERRIDES = previous.overrides;
    }
  });
});
