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
  let runtimeConfig = "overrides: {}\n";
  let runtimeConfigStatus = 200;
  let polls = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      polls++;
      res.writeHead(req.url === "/runtime_config" ? runtimeConfigStatus : 404, {
        "Content-Type": "text/plain",
      });
      res.end(runtimeConfig);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("returns once Loki's /runtime_config shows the limits, in Loki's own spelling of the units", async () => {
    runtimeConfig = "overrides:\n  t1:\n    max_line_size: 5KB\n";
    polls = 0;
    const waiting = waitForTenantOverrides(url, "t1", {
      reject_old_samples_max_age: "24h",
      per_stream_rate_limit: 1000,
      max_global_streams_per_user: 2,
    });
    // Loki reloads: the limits appear after a few polls, printed as Loki prints them.
    while (polls < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    runtimeConfig =
      "overrides:\n  t1:\n    reject_old_samples_max_age: 1d\n    per_stream_rate_limit: 1000B\n    max_global_streams_per_user: 2\n";

    await expect(waiting).resolves.toBeUndefined();
    expect(polls).toBeGreaterThan(3);
  });

  it("fails at once, saying why, when Loki has no /runtime_config, instead of guessing at a wait", async () => {
    runtimeConfigStatus = 404;
    runtimeConfig = "404 page not found\n";
    try {
      await expect(waitForTenantOverrides(url, "t2", { max_line_size: 10 })).rejects.toThrow(
        `Loki at ${url} answered GET /runtime_config with HTTP 404 (404 page not found\n): tests that set tenant limits need that endpoint to see when Loki has applied them`,
      );
    } finally {
      runtimeConfigStatus = 200;
    }
  });
});
