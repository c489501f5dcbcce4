import { describe, expect, it } from "vitest";
import { runReplayLocally } from "../../cli/local-workflow.ts";
import type { DeliveryReport } from "../../functions/core/delivery/deliver.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { getChunk } from "../../functions/core/storage/run-store.ts";
import { cloudWatchEventId } from "../fixtures/subscription.ts";
import { uniqueName } from "../helpers/aws.ts";
import { HOUR, lastWholeHour, logs, seedLogGroup } from "../helpers/log-groups.ts";
import { expectedEntries, NO_TENANT_LIMITS_REASON, noTenantLimits, queryRangeAll } from "../helpers/loki.ts";
import { chunkRecords, createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * Loki answers a push of several streams with the error of its LAST stream only (Loki 3.4.6
 * `instance.Push` keeps one `appendErr`): an earlier stream refused for the active-stream limit or
 * its per-stream rate comes back as 204 and its entries are gone. These tests put the refused
 * stream first and last, ship through the live shipper's own code and replay the spill, then
 * audit: every event is in Loki exactly once, or in spill/ or rejected/ with Loki's reason, and
 * the reports count exactly what Loki holds.
 *
 * The tenant limits are set through Loki's runtime overrides (setTenantLimits). The hours used are
 * the two before the current one, late enough in the earlier one: a real Loki does not return
 * just-pushed entries older than `query_ingesters_within` (3h) until it flushes them.
 */
const now = Date.now();
/**
 * A time in the UTC hour `hoursAgo` (1 or 2) hours before the current one, early enough that events
 * up to 30 minutes later stay in that hour, and at most 2 h 35 min ago.
 */
const inHour = (hoursAgo: number) =>
  lastWholeHour(now) - (hoursAgo - 1) * HOUR + (hoursAgo === 2 ? 25 * 60_000 : 0);

const bed = useTestBed();

function eventsAt(startMs: number, count: number, label: string, lineBytes = 0): LogEvent[] {
  return Array.from({ length: count }, (_, index) => {
    const timestamp = startMs + 60_000 * (index + 1);
    const text = `${label} ${index}`;
    const message = lineBytes > 0 ? text.padEnd(lineBytes, ".") : text;
    return { id: cloudWatchEventId(timestamp), timestamp, message, logStream: "2026/11/26/[$LATEST]abc" };
  });
}

interface Audit {
  inLoki: string[];
  spilled: LogEvent[];
  rejected: LogEvent[];
}

/** Where each event is: in the tenant's Loki, spill/ or rejected/. */
async function audit(name: string, bucket: string, tenant: string): Promise<Audit> {
  const segment = encodeURIComponent(name);
  const streams = await queryRangeAll(bed.loki.lokiUrl, tenant, `{log_group="${name}"}`, {
    start: BigInt(now - 30 * HOUR) * 1_000_000n,
    end: BigInt(now + HOUR) * 1_000_000n,
  });
  return {
    inLoki: streams.flatMap((stream) => stream.values.map(([ns, line]) => `${ns} ${line}`)).sort(),
    spilled: await chunkRecords(bucket, `spill/${segment}/`),
    rejected: await chunkRecords(bucket, `rejected/${segment}/`),
  };
}

/** Every event exactly once in Loki or kept in S3, and nothing else anywhere. */
function expectAccountedFor(found: Audit, events: LogEvent[]): void {
  const kept = [...found.spilled, ...found.rejected];
  const keptIds = new Set(kept.map((event) => event.id));
  expect(kept).toHaveLength(keptIds.size);
  const expectedInLoki = expectedEntries(events.filter((event) => !keptIds.has(event.id)));
  expect(found.inLoki).toEqual(expectedInLoki);
  expect([...keptIds].every((id) => events.some((event) => event.id === id))).toBe(true);
}

/**
 * A drain that sees the stream-limit spill as past its idle period: the shipper's idea of Loki's
 * chunk_idle_period set to 0, as when the 30 minutes have passed (the tests raise the tenant's
 * limit instead of waiting for Loki to idle streams).
 */
const idlePassed = (env: Record<string, string>) => ({
  ...env,
  LOKI_CHUNK_IDLE_PERIOD: "0s",
  LOKI_STREAM_IDLE_MARGIN: "0s",
});

const sum = (reports: DeliveryReport[], key: "pushed" | "spilled") =>
  reports.reduce((total, report) => total + report[key], 0);

describe.skipIf(noTenantLimits)(`a tenant at its active-stream limit (${NO_TENANT_LIMITS_REASON})`, () => {
  // The batch holds a new hour stream and an existing one; the stream key order (by time_shard)
  // puts the earlier hour first, so "new first" is the order in which Loki used to hide the refusal.
  it.each([
    { order: "new stream first", existingHoursAgo: 1, newHoursAgo: 2 },
    { order: "new stream last", existingHoursAgo: 2, newHoursAgo: 1 },
  ])("spills the new stream with Loki's reason and stores the other ($order)", async (hours) => {
    const bucket = await createTestBucket();
    const name = `/aws/lambda/${uniqueName("streamcap")}`;
    const env = { LOKI_URL: bed.loki.url, LOKI_TENANT: uniqueName("cap") };
    await bed.loki.setTenantLimits(env.LOKI_TENANT, { max_global_streams_per_user: 1 });
    await seedLogGroup(name, { name: "streamcap" }, []);
    const first = eventsAt(inHour(hours.existingHoursAgo), 1, "existing-before");
    await shipLive(name, first, env, bucket);

    const existing = eventsAt(inHour(hours.existingHoursAgo) + 30 * 60_000, 1, "existing");
    const fresh = eventsAt(inHour(hours.newHoursAgo), 2, "new");
    const reports = await shipLive(name, [...fresh, ...existing], env, bucket);

    expect({ pushed: sum(reports, "pushed"), spilled: sum(reports, "spilled") }).toEqual({
      pushed: 1,
      spilled: 2,
    });
    const found = await audit(name, bucket, env.LOKI_TENANT);
    expect(found.spilled.map((event) => event.message).sort()).toEqual(["new 0", "new 1"]);
    expectAccountedFor(found, [...first, ...existing, ...fresh]);
    const [chunkKey] = await listKeys(bucket, `spill/${encodeURIComponent(name)}/`);
    const chunk = await getChunk({ s3, bucket }, chunkKey as string);
    expect(chunk?.chunk.header.reason).toMatch(/^Loki answered 429: Maximum active stream limit exceeded/);

    // A drain right away leaves the chunk: the limit cannot clear before chunk_idle_period.
    const early = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });
    expect(early).toMatchObject({ status: "partial", totals: { pushed: 0, held: 2 } });
    expect(early.hints.join("\n")).toMatch(
      /2 event\(s\) refused earlier for the stream limit wait under spill\/ until/,
    );
    expect(await listKeys(bucket, "spill/")).toEqual([chunkKey]);

    // Once the streams have been idle and the limit allows the stream, the drain replays the
    // spill: exactly once, spill/ empty.
    await bed.loki.setTenantLimits(env.LOKI_TENANT, { max_global_streams_per_user: 10 });
    const drain = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env: idlePassed(env) });
    expect(drain).toMatchObject({ status: "succeeded", totals: { pushed: 2, held: 0 } });
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    expect((await audit(name, bucket, env.LOKI_TENANT)).inLoki).toEqual(
      expectedEntries([...first, ...existing, ...fresh]),
    );
  });

  it("replays a spill chunk that straddles a new and an existing hour at the limit: the new hour is kept, not lost", async () => {
    const bucket = await createTestBucket();
    const name = `/aws/lambda/${uniqueName("straddle")}`;
    const env = { LOKI_URL: bed.loki.url, LOKI_TENANT: uniqueName("cap") };
    await bed.loki.setTenantLimits(env.LOKI_TENANT, { max_global_streams_per_user: 1 });
    await seedLogGroup(name, { name: "straddle" }, []);
    const early = eventsAt(inHour(2), 3, "early");
    const late = eventsAt(inHour(1), 3, "late");
    // The late hour's stream exists and takes the tenant's only stream.
    await shipLive(name, late.slice(0, 1), env, bucket);
    // Loki down: the early hour and the rest of the late hour go to spill/ together.
    await bed.loki.stop();
    try {
      await shipLive(name, [...early, ...late.slice(1)], env, bucket);
    } finally {
      await bed.loki.restart();
    }
    expect(await chunkRecords(bucket, "spill/")).toHaveLength(5);

    const atLimit = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });

    expect(atLimit.totals.pushed).toBe(2);
    expect(atLimit).toMatchObject({ status: "partial", totals: { spilled: 3, streamLimited: 3 } });
    const found = await audit(name, bucket, env.LOKI_TENANT);
    expect(found.spilled.map((event) => event.message).sort()).toEqual(["early 0", "early 1", "early 2"]);
    expectAccountedFor(found, [...early, ...late]);

    await bed.loki.setTenantLimits(env.LOKI_TENANT, { max_global_streams_per_user: 10 });
    const drained = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env: idlePassed(env) });
    expect(drained.totals.pushed).toBe(3);
    expect((await audit(name, bucket, env.LOKI_TENANT)).inLoki).toEqual(expectedEntries([...early, ...late]));
  });
});

describe.skipIf(noTenantLimits)(
  `a stream over its per-stream rate limit (${NO_TENANT_LIMITS_REASON})`,
  () => {
    it.each([
      { order: "busy stream first", busyHoursAgo: 2, quietHoursAgo: 1 },
      { order: "busy stream last", busyHoursAgo: 1, quietHoursAgo: 2 },
    ])("stores what the rate allows and spills the rest with Loki's reason ($order)", async (hours) => {
      const bucket = await createTestBucket();
      const name = `/aws/lambda/${uniqueName("busy")}`;
      const env = { LOKI_URL: bed.loki.url, LOKI_TENANT: uniqueName("rate") };
      // 1 kB/s per stream: a 1,200-byte line never fits; 300-byte lines do, one push at a time.
      await bed.loki.setTenantLimits(env.LOKI_TENANT, {
        per_stream_rate_limit: 1000,
        per_stream_rate_limit_burst: 1000,
      });
      await seedLogGroup(name, { name: "busy" }, []);
      const busy = [
        ...eventsAt(inHour(hours.busyHoursAgo), 1, "huge", 1200),
        ...eventsAt(inHour(hours.busyHoursAgo) + 120_000, 1, "small", 300),
      ];
      const quiet = eventsAt(inHour(hours.quietHoursAgo), 2, "quiet");

      const reports = await shipLive(name, [...busy, ...quiet], env, bucket);

      const found = await audit(name, bucket, env.LOKI_TENANT);
      expect(found.spilled.map((event) => event.message)).toEqual([busy[0]?.message]);
      expectAccountedFor(found, [...busy, ...quiet]);
      expect({ pushed: sum(reports, "pushed"), spilled: sum(reports, "spilled") }).toEqual({
        pushed: 3,
        spilled: 1,
      });
      expect(found.inLoki).toHaveLength(3);
    });
  },
);
