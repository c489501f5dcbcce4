import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LokiTestServer, startLokiTestServer } from "../../loki-test-server/index.ts";
import { pushJson } from "../loki-test-server/push-client.ts";
import { uniqueName } from "./aws.ts";
import { queryRange } from "./loki.ts";
import { type LokiFaultProxy, startLokiFaultProxy } from "./loki-fault-proxy.ts";

/** The fault proxy in front of the Loki test server: what a client sees, and what Loki stores. */
let server: LokiTestServer;
let proxy: LokiFaultProxy;

beforeAll(async () => {
  server = await startLokiTestServer();
  proxy = await startLokiFaultProxy(server.url);
});
afterAll(async () => {
  await proxy?.close();
  await server?.close();
});

const entry = (line: string): [string, string] => [`${Date.now()}000000`, line];
const lastMinute = () => {
  const now = BigInt(Date.now()) * 1_000_000n;
  return { start: now - 60_000_000_000n, end: now + 1_000_000_000n };
};

/** The error code of a new TCP connection to `url` (undefined when it connects). */
function connectionError(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(url).port), "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code));
  });
}

async function linesOf(tenant: string): Promise<string[]> {
  const streams = await queryRange(server.url, tenant, '{job="proxy"}', lastMinute());
  return streams.flatMap((stream) => stream.values.map((value) => value[1])).sort();
}

describe("the Loki fault proxy", () => {
  it("forwards pushes and queries unchanged and counts the accepted pushes", async () => {
    const tenant = uniqueName("proxy");
    const before = proxy.acceptedPushes;

    const answer = await pushJson(proxy.url, tenant, [{ stream: { job: "proxy" }, values: [entry("a")] }]);
    const empty = await pushJson(proxy.url, tenant, []);

    expect(answer).toEqual({ status: 204, body: "" });
    expect(empty.status).toBe(422);
    expect(proxy.acceptedPushes).toBe(before + 1);
    const viaProxy = await queryRange(proxy.url, tenant, '{job="proxy"}', lastMinute());
    expect(viaProxy.flatMap((stream) => stream.values.map((value) => value[1]))).toEqual(["a"]);
  });

  it("refuses connections while down and forwards again once up", async () => {
    const tenant = uniqueName("proxy");
    await proxy.down();
    const refused = await pushJson(proxy.url, tenant, [
      { stream: { job: "proxy" }, values: [entry("x")] },
    ]).catch((error: Error) => error);
    const whileDown = await connectionError(proxy.url);
    await proxy.up();
    const after = await pushJson(proxy.url, tenant, [{ stream: { job: "proxy" }, values: [entry("y")] }]);

    expect(refused).toBeInstanceOf(Error);
    expect(whileDown).toBe("ECONNREFUSED");
    expect(after.status).toBe(204);
    expect(await linesOf(tenant)).toEqual(["y"]);
  });

  it("answers an injected status for the given number of pushes, without Loki storing them", async () => {
    const tenant = uniqueName("proxy");
    proxy.setFault({ kind: "status", status: 429, body: "Ingestion rate limit exceeded\n", times: 2 });
    const statuses: number[] = [];
    const bodies: string[] = [];
    for (const line of ["p", "q", "r"]) {
      const answer = await pushJson(proxy.url, tenant, [{ stream: { job: "proxy" }, values: [entry(line)] }]);
      statuses.push(answer.status);
      bodies.push(answer.body);
    }

    expect(statuses).toEqual([429, 429, 204]);
    expect(bodies[0]).toBe("Ingestion rate limit exceeded\n");
    expect(await linesOf(tenant)).toEqual(["r"]);
  });

  it("lets queries through while pushes are faulted", async () => {
    const tenant = uniqueName("proxy");
    proxy.setFault({ kind: "status", status: 503 });
    try {
      const streams = await queryRange(proxy.url, tenant, '{job="proxy"}', lastMinute());
      expect(streams).toEqual([]);
    } finally {
      proxy.setFault();
    }
  });

  it("drops the connection without an answer on a reset fault", async () => {
    const tenant = uniqueName("proxy");
    proxy.setFault({ kind: "reset" });
    try {
      await expect(
        pushJson(proxy.url, tenant, [{ stream: { job: "proxy" }, values: [entry("z")] }]),
      ).rejects.toThrow();
    } finally {
      proxy.setFault();
    }
    expect(await linesOf(tenant)).toEqual([]);
  });

  it("never forwards a delayed push whose connection was dropped by going down", async () => {
    const tenant = uniqueName("proxy");
    proxy.setFault({ kind: "latency", ms: 300 });
    const pushing = pushJson(proxy.url, tenant, [
      { stream: { job: "proxy" }, values: [entry("late")] },
    ]).catch((error: Error) => error);
    // Wait until the push is held by the proxy (a condition, not a fixed time).
    while (proxy.heldPushes === 0) await new Promise((resolve) => setImmediate(resolve));
    await proxy.down();
    const outcome = await pushing;
    proxy.setFault();
    await proxy.up();
    while (proxy.heldPushes > 0) await new Promise((resolve) => setTimeout(resolve, 10));

    expect(outcome).toBeInstanceOf(Error);
    expect(await linesOf(tenant)).toEqual([]);
  });
});
