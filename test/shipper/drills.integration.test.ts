import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { deliverEvents } from "../../functions/core/delivery/deliver.ts";
import { eventNanoseconds } from "../../functions/core/delivery/timestamps.ts";
import { ConfigError } from "../../functions/core/errors.ts";
import { createLokiPushClient } from "../../functions/core/loki/loki-target.ts";
import type { Chunk } from "../../functions/core/storage/chunk-format.ts";
import {
  type ShipperConfig,
  type ShipResult,
  shipSubscriptionEvent,
} from "../../functions/shipper/ship-subscription.ts";
import {
  dataMessage,
  type FixtureLogEvent,
  realisticEvents,
  sizedEvents,
  subscriptionEvent,
} from "../fixtures/subscription.ts";
import { uniqueName } from "../helpers/aws.ts";
import { createTaggedLogGroup } from "../helpers/log-groups.ts";
import { lokiEntries, NO_TENANT_LIMITS_REASON, noTenantLimits } from "../helpers/loki.ts";
import { readChunks, s3 } from "../helpers/s3.ts";
import {
  expectRoundMatchesLoki,
  lambdaContext,
  shipperConfig,
  shipperDeps,
  shipperEnv,
  shippingRound,
} from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";
import { waitFor } from "../helpers/wait.ts";

/** Failure drills: Loki down and back, Loki throttling, S3 failing too. */
const bed = useTestBed();

const envFor = (tenant: string, extra: Record<string, string> = {}) =>
  shipperEnv({ bucket: bed.bucket, lokiUrl: bed.loki.url, tenant }, extra);

function countIds(ids: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** The outage drill's payload before which Loki stops. */
const LOKI_STOPS_AT = 3;

describe("outage drill", () => {
  it("keeps every event of two log groups in Loki or spill/ while Loki is down, and replays the spill once it is back", async () => {
    const tenant = uniqueName("outage");
    const groups = [
      await createTaggedLogGroup("outage-a", { drill: "outage", name: "a" }),
      await createTaggedLogGroup("outage-b", { drill: "outage", name: "b" }),
    ];
    const config = shipperConfig(envFor(tenant));
    const deps = shipperDeps(config);
    const startMs = Date.now() - 10 * 60_000;
    const payloads = Array.from({ length: 8 }, (_, index) => {
      const logGroup = groups[index % 2] as string;
      return { logGroup, events: realisticEvents(250, startMs + index * 10_000) };
    });
    const allEvents = payloads.flatMap((payload) => payload.events);

    // When: payloads for both groups are shipped one after another while Loki stops in the middle.
    const results: ShipResult[] = [];
    for (const [index, payload] of payloads.entries()) {
      if (index === LOKI_STOPS_AT) await bed.loki.stop();
      results.push(
        await shipSubscriptionEvent(
          subscriptionEvent(
            dataMessage({
              logGroup: payload.logGroup,
              logStream: `stream-${index}`,
              events: payload.events,
            }),
          ),
          lambdaContext(5_000),
          config,
          deps,
        ),
      );
    }
    await bed.loki.restart();

    // Then: the invocations before the stop pushed everything, those after spilled everything
    // as unreachable; every event is in Loki or in spill/, none twice in Loki.
    for (const [index, result] of results.entries()) {
      expect(result.outcome).toBe("delivered");
      if (result.outcome !== "delivered") continue;
      const shipping = await shippingRound(bed.bucket, [result.report]);
      expectRoundMatchesLoki(shipping, index < LOKI_STOPS_AT, `payload ${index}`);
    }
    const inLoki = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{drill="outage"}`,
      startMs - 1,
      Date.now() + 1000,
    );
    const spillChunks = (
      await Promise.all(groups.map((group) => readChunks(bed.bucket, `spill/${encodeURIComponent(group)}/`)))
    ).flat();
    const spilledEvents = spillChunks.flatMap(({ chunk }) => chunk.records);
    const lokiLines = countIds(inLoki.map((entry) => `${entry.labels.log_stream}|${entry.ns}|${entry.line}`));
    expect([...lokiLines.values()].every((count) => count === 1)).toBe(true);
    const reports = results.flatMap((result) => (result.outcome === "delivered" ? [result.report] : []));
    const pushed = reports.reduce((sum, report) => sum + report.pushed, 0);
    const spilled = reports.reduce((sum, report) => sum + report.spilled, 0);
    expect(pushed).toBe(inLoki.length);
    expect(spilled).toBe(spilledEvents.length);
    expect(pushed + spilled).toBe(allEvents.length);
    expect(spilled).toBeGreaterThan(0);
    const spilledIds = new Set(spilledEvents.map((record) => record.id));
    expect(spilledIds.size).toBe(spilledEvents.length);
    expect(spillChunks.every(({ chunk }) => /unreachable|ECONNREFUSED/.test(chunk.header.reason ?? ""))).toBe(
      true,
    );

    // And: replaying the spill chunks with the same delivery stores each missing event once.
    await replaySpillChunks(spillChunks, config, bed.bucket);
    const afterReplay = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{drill="outage"}`,
      startMs - 1,
      Date.now() + 1000,
    );
    expect(afterReplay).toHaveLength(allEvents.length);
    const expectedNs = new Set(afterReplay.map((entry) => entry.ns));
    expect(expectedNs.size).toBe(allEvents.length);
  });
});

describe("outage drill with pushes in flight", () => {
  it("accounts for every event when Loki stops while pushes of both groups are in flight", async () => {
    const tenant = uniqueName("inflight");
    const groups = [
      await createTaggedLogGroup("inflight-a", { drill: "inflight" }),
      await createTaggedLogGroup("inflight-b", { drill: "inflight" }),
    ];
    const config = shipperConfig(envFor(tenant, { LOKI_BATCH_MAX_BYTES: "16KB" }));
    const deps = shipperDeps(config);
    const startMs = Date.now() - 10 * 60_000;
    const payloads = Array.from({ length: 6 }, (_, index) => ({
      logGroup: groups[index % 2] as string,
      events: realisticEvents(300, startMs + index * 10_000),
    }));
    const allEvents = payloads.flatMap((payload) => payload.events);
    const idByNs = new Map(allEvents.map((event) => [eventNanoseconds(event.timestamp, event.id), event.id]));
    const acceptedBefore = bed.loki.acceptedPushes;
    bed.loki.setFault({ kind: "latency", ms: 30 });

    // When: all payloads are handled concurrently and Loki stops under them.
    const shipping = Promise.all(
      payloads.map((payload, index) =>
        shipSubscriptionEvent(
          subscriptionEvent(
            dataMessage({ logGroup: payload.logGroup, logStream: `s-${index}`, events: payload.events }),
          ),
          lambdaContext(4_000),
          config,
          deps,
        ),
      ),
    );
    // Loki stops once it has stored some pushes while others are under way (conditions, not a time).
    await waitFor(
      () => bed.loki.acceptedPushes > acceptedBefore && bed.loki.heldPushes > 0,
      "a push stored and another in flight",
    );
    await bed.loki.stop();
    const results = await shipping;
    bed.loki.setFault();
    await bed.loki.restart();

    // Then: every event is in Loki or in spill/ (a push cut off after Loki stored it can be in
    // both; the replay is then a no-op for it), and nothing is twice in Loki.
    const inLoki = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{drill="inflight"}`,
      startMs - 1,
      Date.now() + 1000,
    );
    const lokiIds = inLoki.map((entry) => idByNs.get(entry.ns));
    expect(lokiIds.every((id) => id !== undefined)).toBe(true);
    expect(new Set(lokiIds).size).toBe(lokiIds.length);
    const spillChunks = (
      await Promise.all(groups.map((group) => readChunks(bed.bucket, `spill/${encodeURIComponent(group)}/`)))
    ).flat();
    const spilledIds = spillChunks.flatMap(({ chunk }) => chunk.records.map((record) => record.id));
    expect(new Set(spilledIds).size).toBe(spilledIds.length);
    const accounted = new Set([...lokiIds, ...spilledIds]);
    expect(allEvents.filter((event) => !accounted.has(event.id))).toEqual([]);
    expect(spilledIds.length).toBeGreaterThan(0);
    // Spilled because Loki went away, never because time ran out while it was up.
    for (const { chunk } of spillChunks) expect(chunk.header.reason).toMatch(/^Loki is unreachable: /);
    const reported = results.flatMap((result) => (result.outcome === "delivered" ? [result.report] : []));
    expect(reported.reduce((sum, report) => sum + report.pushed + report.spilled, 0)).toBe(allEvents.length);

    // And: after replaying the spill, every event is in Loki exactly once.
    await replaySpillChunks(spillChunks, config, bed.bucket);
    const afterReplay = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{drill="inflight"}`,
      startMs - 1,
      Date.now() + 1000,
    );
    expect(afterReplay).toHaveLength(allEvents.length);
    expect(new Set(afterReplay.map((entry) => idByNs.get(entry.ns))).size).toBe(allEvents.length);
  }, 30_000);
});

/** Pushes kept spill chunks again with the shipper's own delivery, as the drain does. */
async function replaySpillChunks(
  spillChunks: { chunk: Chunk }[],
  config: ShipperConfig,
  bucket: string,
): Promise<void> {
  const client = await createLokiPushClient(config.loki);
  for (const { chunk } of spillChunks) {
    const events = chunk.records.map(({ id, timestamp, message, logStream }) => ({
      id,
      timestamp,
      message,
      logStream,
    }));
    const batch = { logGroup: chunk.header.logGroup, labels: chunk.header.labels, events };
    await deliverEvents([batch], { loki: client, s3, bucket, deadline: Date.now() + 20_000 });
  }
}

describe("throttling drill", () => {
  it.skipIf(noTenantLimits)(
    `backs off on 429 and delivers everything, or spills what it could not deliver in time (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      const tenant = uniqueName("throttle");
      // A tenant with a tiny ingestion rate: 100 KiB/s, burst 200 KiB (Loki answers 429, nothing stored).
      await bed.loki.setTenantLimits(tenant, { ingestion_rate_mb: 0.1, ingestion_burst_size_mb: 0.2 });
      const logGroup = await createTaggedLogGroup("throttle", { drill: "throttle" });
      const config = shipperConfig(envFor(tenant, { LOKI_BATCH_MAX_BYTES: "64KB" }));
      const startMs = Date.now() - 60_000;
      const events = sizedEvents(600, 1000, startMs); // ~600 KB: three times the burst

      const result = await shipSubscriptionEvent(
        subscriptionEvent(dataMessage({ logGroup, events })),
        lambdaContext(15_000),
        config,
        shipperDeps(config, { retry: { maxAttempts: 30, baseDelayMs: 100, maxDelayMs: 1_000 } }),
      );

      expect(result.outcome).toBe("delivered");
      if (result.outcome !== "delivered") return;
      expect(result.report.retries).toBeGreaterThan(0);
      // 600 KB at 100 KiB/s fits in the 14 s left: backing off delivers all of it.
      expect(result.report).toMatchObject({ pushed: 600, spilled: 0 });
      const stored = await lokiEntries(
        { url: bed.loki.url, tenant: tenant },
        `{drill="throttle"}`,
        startMs - 1,
        Date.now() + 1000,
      );
      const spilled = (await readChunks(bed.bucket, `spill/${encodeURIComponent(logGroup)}/`)).flatMap(
        ({ chunk }) => chunk.records,
      );
      expect(stored).toHaveLength(result.report.pushed);
      expect(spilled).toHaveLength(result.report.spilled);
      expect(stored.length + spilled.length).toBe(events.length);
      const all = new Set([...stored.map((entry) => entry.line), ...spilled.map((record) => record.message)]);
      expect(all.size).toBe(events.length);
    },
    30_000,
  );

  it.skipIf(noTenantLimits)(
    `spills when the deadline comes before Loki accepts (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      const tenant = uniqueName("throttle-short");
      await bed.loki.setTenantLimits(tenant, { ingestion_rate_mb: 0.01, ingestion_burst_size_mb: 0.02 });
      const logGroup = await createTaggedLogGroup("throttle-short", { drill: "throttle-short" });
      const config = shipperConfig(envFor(tenant, { LOKI_BATCH_MAX_BYTES: "64KB" }));
      const events = sizedEvents(100, 1000, Date.now() - 60_000); // 100 KB: 5 times the burst

      const result = await shipSubscriptionEvent(
        subscriptionEvent(dataMessage({ logGroup, events })),
        lambdaContext(2_500),
        config,
        shipperDeps(config, { retry: { maxAttempts: 100, baseDelayMs: 100, maxDelayMs: 400 } }),
      );

      expect(result.outcome).toBe("delivered");
      if (result.outcome !== "delivered") return;
      expect(result.report.spilled).toBeGreaterThan(0);
      expect(result.report.pushed + result.report.spilled).toBe(100);
      const spill = (await readChunks(bed.bucket, `spill/${encodeURIComponent(logGroup)}/`)).map(
        ({ chunk }) => chunk,
      );
      // Throttled until the deadline: the last 429, or the deadline itself on a slow machine.
      for (const chunk of spill) {
        expect(chunk.header.reason).toMatch(/^Loki answered 429: |deadline came before Loki accepted/);
      }
      expect(spill.flatMap((chunk) => chunk.records)).toHaveLength(result.report.spilled);
      const stored = await lokiEntries(
        { url: bed.loki.url, tenant: tenant },
        `{drill="throttle-short"}`,
        Date.now() - 120_000,
        Date.now() + 1000,
      );
      expect(stored).toHaveLength(result.report.pushed);
    },
  );
});

describe("when the Loki credentials cannot be read", () => {
  it("keeps the events in spill/ and resolves", async () => {
    const logGroup = await createTaggedLogGroup("nosecret", { drill: "secret" });
    const config = shipperConfig(envFor(uniqueName("nosecret")));
    const events = sizedEvents(5, 100, Date.now() - 1000);
    const deps = shipperDeps(config, {
      loki: () =>
        Promise.reject(
          new ConfigError("Could not read the Loki credentials from secret loki: AccessDeniedException"),
        ),
    });

    const result = await shipSubscriptionEvent(
      subscriptionEvent(dataMessage({ logGroup, events })),
      lambdaContext(),
      config,
      deps,
    );

    expect(result).toMatchObject({ outcome: "delivered", report: { spilled: 5, pushed: 0 } });
    const [spill] = await readChunks(bed.bucket, `spill/${encodeURIComponent(logGroup)}/`);
    expect(spill?.chunk.header.reason).toBe(
      "no Loki client: Could not read the Loki credentials from secret loki: AccessDeniedException",
    );
    expect(spill?.chunk.records.map((record) => record.id).sort()).toEqual(
      events.map((event) => event.id).sort(),
    );
  });
});

describe("when S3 fails too", () => {
  it("throws, so that the invocation fails instead of losing events", async () => {
    const tenant = uniqueName("s3fail");
    const logGroup = await createTaggedLogGroup("s3fail", { drill: "s3" });
    // A real fault from moto: the bed.bucket does not exist. Loki is unreachable (a closed port).
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const config = shipperConfig({
      ...envFor(tenant),
      BUCKET_NAME: "no-such-bucket-here",
      LOKI_URL: `http://127.0.0.1:${closedPort}`,
    });
    const events: FixtureLogEvent[] = sizedEvents(10, 100, Date.now() - 1000);

    await expect(
      shipSubscriptionEvent(
        subscriptionEvent(dataMessage({ logGroup, events })),
        lambdaContext(3_000),
        config,
        shipperDeps(config),
      ),
    ).rejects.toThrow(/Could not keep 10 spill event\(s\) of .* in s3:\/\/no-such-bucket-here/);
  });
});
