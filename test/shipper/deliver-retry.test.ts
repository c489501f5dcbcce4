import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { deliverEvents } from "../../functions/core/delivery/deliver.ts";
import { createLokiPushClient, parseLokiTarget } from "../../functions/core/loki/loki-target.ts";
import { cloudWatchEventId } from "../fixtures/subscription.ts";
import { createTestBucket, readChunks, s3 } from "../helpers/s3.ts";

/**
 * Retry behaviour towards what sits in front of Loki: a small local HTTP server plays a proxy
 * that answers with Retry-After (Loki itself never sends it, and the Loki test server cannot).
 */
let bucket: string;
let proxy: Server | undefined;

beforeAll(async () => {
  bucket = await createTestBucket();
});

afterEach(async () => {
  await new Promise((resolve) => proxy?.close(resolve) ?? resolve(undefined));
});

async function startProxy(
  answers: { status: number; headers?: Record<string, string> }[],
): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  proxy = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      const answer = answers[Math.min(hits, answers.length - 1)] as {
        status: number;
        headers?: Record<string, string>;
      };
      hits += 1;
      response.writeHead(answer.status, answer.headers ?? {});
      response.end(answer.status === 204 ? undefined : `status ${answer.status}\n`);
    });
  });
  await new Promise<void>((resolve) => proxy?.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, hits: () => hits };
}

/** The proxy plays Loki's push endpoint only: no look-up of stored entries (a tenant without shard_streams). */
const proxyTarget = (url: string) => ({
  LOKI_URL: url,
  LOKI_TENANT: "t",
  LOKI_SHARD_STREAMS_ENABLED: "false",
});

const events = [
  { id: cloudWatchEventId(Date.now()), timestamp: Date.now() - 1000, message: "m", logStream: "s" },
];

describe("deliverEvents retries", () => {
  it("waits at least Retry-After before retrying a 503", async () => {
    const { url, hits } = await startProxy([
      { status: 503, headers: { "Retry-After": "2" } },
      { status: 204 },
    ]);
    const delays: number[] = [];

    const report = await deliverEvents([{ logGroup: "/retry", labels: { a: "b" }, events }], {
      loki: await createLokiPushClient(parseLokiTarget(proxyTarget(url))),
      s3,
      bucket,
      deadline: Date.now() + 10_000,
      sleep: async (ms) => {
        delays.push(ms);
      },
    });

    expect(report).toMatchObject({ pushed: 1, retries: 1, requests: 2, spilled: 0 });
    expect(hits()).toBe(2);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThanOrEqual(2000);
  });

  it("spills instead of retrying when Retry-After reaches past the deadline", async () => {
    const { url, hits } = await startProxy([{ status: 503, headers: { "Retry-After": "60" } }]);

    const report = await deliverEvents([{ logGroup: "/retry-late", labels: { a: "b" }, events }], {
      loki: await createLokiPushClient(parseLokiTarget(proxyTarget(url))),
      s3,
      bucket,
      deadline: Date.now() + 5_000,
    });

    expect(report).toMatchObject({ pushed: 0, spilled: 1, requests: 1 });
    expect(hits()).toBe(1);
    const [spill] = await readChunks(bucket, `spill/${encodeURIComponent("/retry-late")}/`);
    expect(spill?.chunk.header.reason).toMatch(/^Loki answered 503: status 503 \(no time left/);
  });

  it("retries 5xx with backoff and spills after the last attempt", async () => {
    const { url, hits } = await startProxy([{ status: 502 }]);
    const delays: number[] = [];

    const report = await deliverEvents([{ logGroup: "/retry-502", labels: { a: "b" }, events }], {
      loki: await createLokiPushClient(parseLokiTarget(proxyTarget(url))),
      s3,
      bucket,
      deadline: Date.now() + 30_000,
      retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 },
      sleep: async (ms) => {
        delays.push(ms);
      },
    });

    expect(hits()).toBe(5);
    expect(report).toMatchObject({ pushed: 0, spilled: 1, retries: 4 });
    // Full jitter: each wait is random below its cap (100, 200, 400, 800 ms).
    delays.forEach((delay, index) => {
      expect(delay).toBeLessThanOrEqual(100 * 2 ** index);
    });
  });
});
