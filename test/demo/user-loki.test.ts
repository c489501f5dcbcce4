import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECENT_HISTORY_MS } from "../helpers/log-groups.ts";
import { startTestLoki, type TestLoki } from "../helpers/loki.ts";
import { expectEachStreamOnce, printedAnswer, QUERY, runDemo } from "./demo-output.ts";

/**
 * `npm run demo -- --loki-url URL --tenant T` against "the user's own Loki": the tests' Loki (the
 * test server, or the Loki of LOKI_TEST_URL) behind a small basic-auth gateway on 127.0.0.1, the way
 * Grafana Cloud puts one in front of Loki (the Loki test server itself does not check credentials). The demo runs as a child
 * process, as a user starts it, with its own moto.
 */

const USER = "123456";
const PASSWORD = "glc_demo-password-never-printed";

/** Forwards to Loki only requests with the right basic credentials; 401 otherwise, like a gateway. */
async function startAuthGateway(lokiUrl: string): Promise<Server> {
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
  const target = new URL(lokiUrl);
  const gateway = createServer((incoming, outgoing) => {
    if (incoming.headers.authorization !== expected) {
      outgoing.writeHead(401, { "Content-Type": "text/plain" }).end("invalid authentication credentials\n");
      return;
    }
    const forwarded = request(
      {
        host: target.hostname,
        port: target.port,
        path: incoming.url,
        method: incoming.method,
        headers: incoming.headers,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  return gateway;
}

/** The whole demo in a child process: a day's backfill of two groups, then live shipping. */
const DEMO_TIMEOUT_MS = 180_000;

describe("the demo against the user's own Loki", () => {
  let loki: TestLoki;
  let gateway: Server;
  let gatewayUrl: string;

  beforeAll(async () => {
    loki = await startTestLoki();
    gateway = await startAuthGateway(loki.url);
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => gateway?.close(resolve));
    await loki?.close();
  });

  it(
    "ships the demo's events there, with the credentials from the environment",
    async () => {
      const startedAt = Date.now();

      const result = await runDemo(["--loki-url", gatewayUrl, "--tenant", loki.tenant], {
        LOKI_USERNAME: USER,
        LOKI_PASSWORD: PASSWORD,
      });

      expect(result.stderr).not.toContain("refused");
      expect(result.code).toBe(0);
      expect(`${result.stdout}${result.stderr}`).not.toContain(PASSWORD);
      // The demo asks for what a real Loki answers at once: just-pushed entries of the last few
      // hours (query_ingesters_within, 3 h); older ones only once it has flushed them.
      const answer = printedAnswer(result.stdout);
      expect(answer.since).toBeGreaterThanOrEqual(startedAt - RECENT_HISTORY_MS);
      const python = await loki.queryRangeAll(QUERY, {
        start: BigInt(answer.since) * 1_000_000n,
        end: BigInt(Date.now() + 60_000) * 1_000_000n,
      });
      const perStream = new Map<string, number>();
      for (const stream of python) {
        const key = `name="${stream.stream.name}", time_shard="${stream.stream.time_shard}"`;
        perStream.set(key, (perStream.get(key) ?? 0) + stream.values.length);
      }
      const entries = [...perStream.values()].reduce((total, count) => total + count, 0);
      // One invocation a minute, backfilled, plus what the live shipper sent.
      expect(entries).toBeGreaterThan(2 * 60);
      // What it printed is what Loki holds for that window, each stream once.
      expect(answer.entries).toBe(entries);
      expectEachStreamOnce(answer);
      expect(new Map(answer.streamLines)).toEqual(perStream);
      // And all the events the demo wrote to CloudWatch for that time (this test's own tenant).
      if (!process.env.LOKI_TEST_TENANT) {
        expect(answer.perName).toEqual([
          `name="fun-python": ${entries} entries (all the events /aws/lambda/fun-python holds for that time)`,
        ]);
      }
      expect(result.stdout).toContain("The events are in your Loki");
    },
    DEMO_TIMEOUT_MS,
  );

  it("prints one line when that Loki refuses the credentials", async () => {
    const result = await runDemo(["--loki-url", gatewayUrl, "--tenant", loki.tenant], {
      LOKI_USERNAME: USER,
      LOKI_PASSWORD: "wrong",
    });

    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      `Loki at ${gatewayUrl}/loki/api/v1/push refused the demo (HTTP 401 invalid authentication credentials): check LOKI_USERNAME and LOKI_PASSWORD (or LOKI_BEARER_TOKEN) and --tenant`,
    ]);
  });

  it("prints one line when that Loki cannot be reached", async () => {
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const result = await runDemo(["--loki-url", `http://127.0.0.1:${port}`]);

    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      `Loki at http://127.0.0.1:${port}/loki/api/v1/push cannot be reached (ECONNREFUSED): check --loki-url and the network`,
    ]);
  });
});
