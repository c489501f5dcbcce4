import { readFileSync } from "node:fs";
import snappy from "snappyjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import { type ContractCase, runContractCase, snappyLiteral } from "./contract-runner.ts";

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

  it("makes literal-only snappy bodies that decode to the raw bytes (compression snappy-literal)", () => {
    const raw = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    for (const size of [1, 59, 60, 255, 256, 65_536, 70_000]) {
      const part = raw.subarray(0, size);
      expect(Buffer.from(snappy.uncompress(snappyLiteral(part))).equals(part)).toBe(true);
    }
  });

  it("reports a difference when the server answers otherwise (the runner is not blind)", async () => {
    const c01 = cases.find((c) => c.name === "c01_valid_push_query") as ContractCase;
    server.setFault({ kind: "status", status: 503, body: "unavailable\n", times: 1 });
    const problems = await runContractCase(c01, server.url, `${run}x`);
    expect(problems.some((p) => p.includes("status: expected 204, got 503"))).toBe(true);
  });

  it("reports a difference when a metric result differs (vector values are compared)", async () => {
    const c28 = cases.find((c) => c.name === "c28_metric_instant_count_over_time") as ContractCase;
    const otherRun = `${run}y`;
    // The case's now is the wall clock rounded down to 10 minutes: one more entry of function-a
    // two minutes before it makes the server count 5 where Loki counted 4.
    const alignedNowMs = Math.floor(Date.now() / 600_000) * 600_000;
    const extra = await fetch(`${server.url}/loki/api/v1/push`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Scope-OrgID": `${otherRun}-c28` },
      body: JSON.stringify({
        streams: [
          {
            stream: { case: "c28", run: otherRun, name: "function-a", region: "eu-central-1" },
            values: [[`${alignedNowMs - 120_000}000000`, "one line more than captured"]],
          },
        ],
      }),
    });
    expect(extra.status).toBe(204);
    const problems = await runContractCase(c28, server.url, otherRun);
    const countStep = problems.find((p) => p.startsWith("step 2 (count_per_stream): vector differs"));
    expect(countStep).toContain('"function-a"');
    expect(countStep).toMatch(/expected: .*"function-a".*\[\d+(\.\d+)?,\\"4\\"\]/s);
    expect(countStep).toMatch(/got: .*"function-a".*\[\d+(\.\d+)?,\\"5\\"\]/s);
  });

  for (const contractCase of cases) {
    it(`${contractCase.name} behaves as captured`, async () => {
      const problems = await runContractCase(contractCase, server.url, run);
      expect(problems, problems.join("\n")).toEqual([]);
    });
  }
});
