import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseOverrides } from "../../loki-test-server/index.ts";
import { waitForTenantOverrides, writeTenantOverrides } from "./loki-overrides.ts";

/** The runtime-overrides file a real Loki reloads, as the tests write it and wait for it. */
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "overrides-"));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("writeTenantOverrides", () => {
  it("keeps every tenant's limits when writers race, in a file Loki's format parser reads", async () => {
    const file = join(directory, "race.yaml");
    const tenants = Array.from({ length: 12 }, (_, index) => `tenant-${index}`);

    await Promise.all(
      tenants.map((tenant, index) => writeTenantOverrides(file, tenant, { max_line_size: 100 + index })),
    );
    await writeTenantOverrides(file, "tenant-0", { reject_old_samples_max_age: "2h" });

    const parsed = parseOverrides(await readFile(file, "utf8"), file);
    expect(Object.keys(parsed).sort()).toEqual([...tenants].sort());
    expect(parsed["tenant-0"]).toEqual({ maxLineSize: 100, rejectOldSamplesMaxAgeMs: 2 * 3_600_000 });
    expect(parsed["tenant-11"]).toEqual({ maxLineSize: 111 });
  });
});

describe("waitForTenantOverrides", () => {
  let server: Server;
  let url: string;
  let metrics = "";
  let metricsStatus = 200;
  let polls = 0;

  const DEFAULTS =
    'loki_overrides_defaults{limit_name="max_global_streams_per_user"} 5000\n' +
    'loki_overrides_defaults{limit_name="max_line_size"} 262144\n' +
    'loki_overrides_defaults{limit_name="per_stream_rate_limit"} 3.145728e+06\n' +
    'loki_overrides_defaults{limit_name="reject_old_samples_max_age"} 6.048e+14\n';

  beforeAll(async () => {
    server = createServer((req, res) => {
      polls++;
      res.writeHead(req.url === "/metrics" ? metricsStatus : 404, { "Content-Type": "text/plain" });
      res.end(metrics);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("returns once Loki's loki_overrides show the limits, in the exporter's units (bytes, ns)", async () => {
    metrics = `${DEFAULTS}loki_overrides{limit_name="max_line_size",user="t1"} 5000\n`;
    polls = 0;
    const waiting = waitForTenantOverrides(url, "t1", {
      reject_old_samples_max_age: "24h",
      per_stream_rate_limit: "1000B",
      max_global_streams_per_user: 2,
    });
    // Loki reloads: the limits appear after a few polls, another tenant's lines beside them.
    while (polls < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    metrics =
      `${DEFAULTS}loki_overrides{limit_name="max_global_streams_per_user",user="t0"} 2\n` +
      'loki_overrides{limit_name="max_global_streams_per_user",user="t1"} 2\n' +
      'loki_overrides{limit_name="per_stream_rate_limit",user="t1"} 1000\n' +
      'loki_overrides{limit_name="reject_old_samples_max_age",user="t1"} 8.64e+13\n';

    await expect(waiting).resolves.toBeUndefined();
    expect(polls).toBeGreaterThan(3);
  });

  it("takes a limit set back to its default as in force once the tenant's line for it is gone", async () => {
    metrics = `${DEFAULTS}loki_overrides{limit_name="max_line_size",user="t3"} 1000\n`;
    polls = 0;
    const waiting = waitForTenantOverrides(url, "t3", { max_line_size: "256KB" });
    while (polls < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    metrics = DEFAULTS;

    await expect(waiting).resolves.toBeUndefined();
    expect(polls).toBeGreaterThan(3);
  });

  it("fails at once, saying why, when Loki has no /metrics, instead of guessing at a wait", async () => {
    metricsStatus = 404;
    metrics = "404 page not found\n";
    try {
      await expect(waitForTenantOverrides(url, "t2", { max_line_size: 10 })).rejects.toThrow(
        `Loki at ${url} answered GET /metrics with HTTP 404 (404 page not found\n): tests that set tenant limits read loki_overrides there to see when Loki has applied them`,
      );
    } finally {
      metricsStatus = 200;
    }
  });
});
