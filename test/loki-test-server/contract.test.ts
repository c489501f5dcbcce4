import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import { type ContractCase, runContractCase } from "./contract-runner.ts";

const casesFile = new URL("../data/loki-contract/cases.json", import.meta.url);
const { cases } = JSON.parse(readFileSync(casesFile, "utf8")) as { cases: ContractCase[] };
const MiB = 1024 * 1024;

/**
 * Every case captured from a real Loki 3.4.6 must behave the same against the test server,
 * exact bodies included. The `raised` tenant gets the limits the capture server had in its
 * runtime overrides, and query_ingesters_within is set to Loki's 3h so that c25 applies too.
 */
describe("Loki test server against the captured Loki 3.4.6 contract", () => {
  let server: LokiTestServer;
  const run = `r${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}${Math.floor(
    Math.random() * 0x10000,
  )
    .toString(16)
    .padStart(4, "0")}`;

  beforeAll(async () => {
    server = await startLokiTestServer({
      overrides: {
        raised: {
          ingestionRateMb: 1024,
          ingestionBurstSizeMb: 1024,
          perStreamRateLimit: 512 * MiB,
          perStreamRateLimitBurst: 1024 * MiB,
        },
      },
      queryIngestersWithinMs: 3 * 3_600_000,
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("has all the captured cases", () => {
    expect(cases.length).toBe(41);
  });

  it("reports a difference when the server answers otherwise (the runner is not blind)", async () => {
    const c01 = cases.find((c) => c.name === "c01_valid_push_query") as ContractCase;
    server.setFault({ kind: "status", status: 503, body: "unavailable\n", times: 1 });
    const problems = await runContractCase(c01, server.url, `${run}x`);
    expect(problems.some((p) => p.includes("status: expected 204, got 503"))).toBe(true);
  });

  for (const contractCase of cases) {
    it(`${contractCase.name} behaves as captured`, async () => {
      const problems = await runContractCase(contractCase, server.url, run);
      expect(problems, problems.join("\n")).toEqual([]);
    });
  }
});
