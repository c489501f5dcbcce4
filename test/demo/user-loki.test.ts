import { execFile } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RECENT_HISTORY_MS } from "../helpers/log-groups.ts";
import { startTestLoki, type TestLoki } from "../helpers/loki.ts";

/**
 * `npm run demo -- --loki-url URL --tenant T` against "the user's own Loki": the tests' Loki (the
 * test server, or the Loki of LOKI_TEST_URL) behind a small basic-auth gateway on 127.0.0.1, the way
 * Grafana Cloud puts one in front of Loki (the Loki test server itself does not check credentials). The demo runs as a child
 * process, as a user starts it, with its own moto.
 */

const USER = "123456";
const PASSWORD = "glc_demo-password-never-printed";

interface DemoResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runDemo(args: string[], env: Record<string, string> = {}): Promise<DemoResult> {
  const { LOKI_USERNAME: _u, LOKI_PASSWORD: _p, LOKI_BEARER_TOKEN: _t, ...parentEnv } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["scripts/demo.ts", "--once", ...args],
      { env: { ...parentEnv, ...env }, timeout: 240_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

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
      // The last two hours of the backfilled day: a real Loki's queries show older just-pushed entries
      // only once it has flushed them (query_ingesters_within, 3 h).
      const python = await loki.queryRangeAll('{name="fun-python", runtime="python"}', {
        start: BigInt(startedAt - RECENT_HISTORY_MS) * 1_000_000n,
        end: BigInt(Date.now() + 60_000) * 1_000_000n,
      });
      const entries = python.reduce((total, stream) => total + stream.values.length, 0);
      // One invocation a minute, backfilled, plus what the live shipper sent.
      expect(entries).toBeGreaterThan(2 * 60);
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
