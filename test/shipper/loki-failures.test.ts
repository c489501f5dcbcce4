import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGotLokiPushClient, type LokiPushClient } from "../../functions/core/loki/loki-client.ts";
import { LokiUnreachableError } from "../../functions/core/loki/loki-errors.ts";
import { checkLokiReady } from "../../functions/core/workflow/replay-plan.ts";
import { startTestLoki, type TestLoki } from "../helpers/loki.ts";

/**
 * What a failed push or readiness check says: which kind of failure (network, TLS, timeout), or
 * Loki's own status and body. Every fault comes from a real server on 127.0.0.1.
 */
let loki: TestLoki;
const servers: Server[] = [];

beforeAll(async () => {
  loki = await startTestLoki();
});
afterAll(async () => {
  await loki?.close();
  for (const server of servers) server.close();
});

function clientFor(pushUrl: string, tenant = "failures"): LokiPushClient {
  return createGotLokiPushClient({
    pushUrl,
    tenant,
    format: "json",
    limits: {
      rejectOldSamplesMaxAgeMs: 7 * 86_400_000,
      creationGracePeriodMs: 600_000,
      maxLineSize: 262_144,
    },
    maxBatchBytes: 1_048_576,
    maxBatchEntries: 10_000,
    pushConcurrency: 1,
    requestTimeoutMs: 10_000,
    lookUpStored: false,
  });
}

const oneStream = () => [
  { labels: { job: "failures" }, entries: [{ ns: BigInt(Date.now()) * 1_000_000n, line: "x" }] },
];

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createTcpServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function pushFailure(client: LokiPushClient, timeoutMs?: number): Promise<LokiUnreachableError> {
  const failure = await client
    .push(oneStream(), timeoutMs ? { timeoutMs } : {})
    .catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(LokiUnreachableError);
  return failure as LokiUnreachableError;
}

/** A self-signed certificate for 127.0.0.1, made by openssl for this test run. */
function selfSignedCertificate(): { key: Buffer; cert: Buffer } {
  const directory = mkdtempSync(join(tmpdir(), "tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        join(directory, "key.pem"),
        "-out",
        join(directory, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    return { key: readFileSync(join(directory, "key.pem")), cert: readFileSync(join(directory, "cert.pem")) };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

describe("a push that gets no HTTP answer", () => {
  it("says network, with the code, when nothing listens", async () => {
    const url = `http://127.0.0.1:${await closedPort()}/loki/api/v1/push`;
    const failure = await pushFailure(clientFor(url));
    expect(failure).toMatchObject({ kind: "network", code: "ECONNREFUSED" });
    expect(failure.message).toMatch(
      /^Loki is unreachable: POST http:\/\/127\.0\.0\.1:\d+\/loki\/api\/v1\/push: network error ECONNREFUSED: /,
    );
  });

  it("says timeout when Loki does not answer in the time allowed", async () => {
    loki.setFault({ kind: "latency", ms: 3_000 });
    try {
      const failure = await pushFailure(clientFor(`${loki.url}/loki/api/v1/push`), 200);
      expect(failure.kind).toBe("timeout");
      expect(failure.message).toMatch(/: timeout error ETIMEDOUT: /);
    } finally {
      loki.setFault();
    }
  });

  it("says tls when the certificate cannot be verified (verification stays on)", async () => {
    const address = await listen(createHttpsServer(selfSignedCertificate(), (_req, res) => res.end()));
    const failure = await pushFailure(clientFor(`https://${address}/loki/api/v1/push`));
    expect(failure).toMatchObject({ kind: "tls", code: "DEPTH_ZERO_SELF_SIGNED_CERT" });
    expect(failure.message).toMatch(/: tls error DEPTH_ZERO_SELF_SIGNED_CERT: /);
  });

  it("says tls when https:// reaches a plain-HTTP port", async () => {
    const address = await listen(createHttpServer((_req, res) => res.end()));
    const failure = await pushFailure(clientFor(`https://${address}/loki/api/v1/push`));
    expect(failure.kind).toBe("tls");
  });
});

describe("a push that Loki answers with an error", () => {
  it("resolves with the status and Loki's body, for the delivery to judge", async () => {
    loki.setFault({ kind: "status", status: 500, body: "too many outstanding requests\n", times: 1 });
    const answer = await clientFor(`${loki.url}/loki/api/v1/push`, loki.tenant).push(oneStream());
    expect(answer).toMatchObject({ status: 500, body: "too many outstanding requests\n" });
  });
});

describe("checkLokiReady", () => {
  async function readyServer(status: number, body: string): Promise<string> {
    const address = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(status, { "Content-Type": "text/plain" });
        res.end(body);
      }),
    );
    return `http://${address}/loki/api/v1/push`;
  }

  it("is true when Loki answers ready", async () => {
    expect(await checkLokiReady(`${loki.url}/loki/api/v1/push`)).toBe(true);
  });

  it("is false when Loki is down or not ready yet", async () => {
    expect(await checkLokiReady(`http://127.0.0.1:${await closedPort()}/loki/api/v1/push`)).toBe(false);
    expect(
      await checkLokiReady(await readyServer(503, "Ingester not ready: waiting for 15s after being ready\n")),
    ).toBe(false);
  });

  it.each([401, 403])("throws a ConfigError naming the credentials when Loki answers %i", async (status) => {
    const url = await readyServer(status, "invalid token\n");
    await expect(checkLokiReady(url, { "X-Scope-OrgID": "t" })).rejects.toMatchObject({
      name: "ConfigError",
      message: expect.stringMatching(
        new RegExp(
          `^Loki refused our credentials: GET http://.*/ready answered ${status}: invalid token; check LOKI_TENANT`,
        ),
      ),
    });
  });
});
