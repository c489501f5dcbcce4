import { describe, expect, it } from "vitest";
import { runBackfillLocally, runReplayLocally } from "../../cli/local-workflow.ts";
import { printRunReport } from "../../cli/report.ts";
import type { DeliveryReport } from "../../functions/core/delivery/deliver.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { cloudWatchEventId } from "../fixtures/subscription.ts";
import { uniqueName } from "../helpers/aws.ts";
import { HOUR, logs, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import { expectedEntries, externalLoki, externalLokiLacks, queryRangeAll } from "../helpers/loki.ts";
import { chunkRecords, createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * A backfill within Loki's active-stream limit, on the Loki test server with a 4 s
 * chunk_idle_period (Loki's default is 30 min): streams leave the tenant's count as they would in
 * Loki, only sooner. The tenant allows 20 active streams; the shipper is told so
 * (LOKI_MAX_GLOBAL_STREAMS_PER_USER) and gives half of them to the backfill.
 */
const IDLE_MS = 4_000;
// A real Loki frees an idle stream at its next flush check after the idle period, and after the
// flush itself: the margin covers that (the test server frees it at once).
const MARGIN_MS = externalLoki ? 1_500 : 300;
const LIMIT = 20;

const now = Date.now();
const hourStart = (hoursAgo: number) => Math.floor((now - hoursAgo * HOUR) / HOUR) * HOUR;

// A 4 s chunk_idle_period, and queries that show entries of any age: its history needs more hour
// streams than the last two hours hold (a default Loki answers from its ingesters for 3 h only).
const lokiSettings = { chunkIdlePeriodMs: IDLE_MS, queryIngestersWithinMs: 0 };
const bed = useTestBed(lokiSettings);
const lokiLacks = externalLokiLacks(lokiSettings);

function budgetEnv(tenant: string, toldLimit = LIMIT, share = 0.5): Record<string, string> {
  return {
    LOKI_URL: bed.loki.url,
    LOKI_TENANT: tenant,
    LOKI_MAX_GLOBAL_STREAMS_PER_USER: String(toldLimit),
    LOKI_BACKFILL_STREAM_SHARE: String(share),
    LOKI_CHUNK_IDLE_PERIOD: `${IDLE_MS}ms`,
    LOKI_STREAM_IDLE_MARGIN: `${MARGIN_MS}ms`,
  };
}

/** A log group with `hours` whole hours of history, six events an hour: one Loki stream per hour. */
async function groupWithHistory(label: string, tenantTag: string, hours: number) {
  const name = `/aws/lambda/${uniqueName(label)}`;
  const startMs = hourStart(hours + 2);
  const endMs = startMs + hours * HOUR;
  const events = await seedLogGroup(name, { name: label, tenant_tag: tenantTag }, [
    ...spreadEvents(label, startMs, endMs, hours * 6),
  ]);
  return { name, startMs, endMs, events };
}

/**
 * Live shipping of `groups` while `running` lasts: one event per group a little less often than the
 * idle period, so that every push needs a new stream in Loki, as a new hour does.
 */
async function shipLiveUntil(
  running: Promise<unknown>,
  groups: string[],
  env: Record<string, string>,
  bucket: string,
): Promise<{ reports: DeliveryReport[]; events: Map<string, LogEvent[]> }> {
  let done = false;
  void running.finally(() => {
    done = true;
  });
  const reports: DeliveryReport[] = [];
  const events = new Map<string, LogEvent[]>(groups.map((group) => [group, []]));
  while (!done) {
    await Promise.all(
      groups.map(async (group) => {
        const timestamp = Date.now() - 1_000;
        const event = {
          id: cloudWatchEventId(timestamp),
          timestamp,
          message: `live ${timestamp}`,
          logStream: "live",
        };
        events.get(group)?.push(event);
        reports.push(...(await shipLive(group, [event], env, bucket)));
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS + 500));
  }
  return { reports, events };
}

/** `<ns> <line>` of what the tenant's Loki holds for `selector` in [startMs, endMs). */
async function inLokiOf(tenant: string, selector: string, startMs: number, endMs: number): Promise<string[]> {
  const streams = await queryRangeAll(bed.loki.url, tenant, selector, {
    start: BigInt(startMs) * 1_000_000n,
    end: BigInt(endMs) * 1_000_000n,
  });
  return streams.flatMap((stream) => stream.values.map(([ns, line]) => `${ns} ${line}`)).sort();
}

const total = (reports: DeliveryReport[], key: "pushed" | "spilled" | "streamLimited") =>
  reports.reduce((sum, report) => sum + report[key], 0);

describe.skipIf(lokiLacks)(`backfill within a 20-stream limit${lokiLacks ? ` (${lokiLacks})` : ""}`, () => {
  it("backfills 48 hour streams beside live shipping: no stream refusal for either, every event once, paced by the budget", async () => {
    const bucket = await createTestBucket();
    const tenant = uniqueName("budget");
    const tenantTag = uniqueName("t");
    await bed.loki.setTenantLimits(tenant, { max_global_streams_per_user: LIMIT });
    const env = budgetEnv(tenant);
    const history = await groupWithHistory("history", tenantTag, 48);
    const liveGroups = await Promise.all(
      ["live-a", "live-b", "live-c", "live-d"].map(async (label) => {
        const name = `/aws/lambda/${uniqueName(label)}`;
        await seedLogGroup(name, { name: label }, []);
        return name;
      }),
    );

    const backfill = runBackfillLocally(
      {
        logGroupNames: [history.name],
        start: new Date(history.startMs).toISOString(),
        end: new Date(history.endMs).toISOString(),
        concurrency: 4,
        requestsPerSecond: 20,
      },
      { logs, s3, bucket, env },
    );
    const live = await shipLiveUntil(backfill, liveGroups, env, bucket);
    const report = await backfill;

    expect(report).toMatchObject({ status: "succeeded", totals: { exported: 288, pushed: 288, spilled: 0 } });
    expect(total(live.reports, "streamLimited")).toBe(0);
    expect(total(live.reports, "spilled")).toBe(0);
    expect(total(live.reports, "pushed")).toBe([...live.events.values()].flat().length);
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    const inLoki = await inLokiOf(tenant, `{tenant_tag="${tenantTag}"}`, history.startMs, history.endMs);
    expect(inLoki).toEqual(expectedEntries(history.events));
    for (const [group, events] of live.events) {
      const liveInLoki = await inLokiOf(tenant, `{log_group="${group}"}`, now - HOUR, Date.now() + 60_000);
      expect(liveInLoki).toEqual(expectedEntries(events));
    }

    // 48 streams, 10 at a time, each held for the idle period and margin after its push: at least
    // four waits of 4.3 s for the streams before it to go idle.
    const holdMs = IDLE_MS + MARGIN_MS;
    expect(report.totals.streamWaits).toBeGreaterThanOrEqual(4);
    expect(report.durationMs).toBeGreaterThanOrEqual((Math.ceil(48 / 10) - 1) * holdMs);
    const printed: string[] = [];
    printRunReport({ out: (line) => printed.push(line), err: () => {}, interactive: false }, report);
    expect(printed.join("\n")).toMatch(/stream budget: \d+ chunk\(s\) waited \d+\.\d s in all/);
  });

  it("when Loki's limit is lower than the shipper was told: refusals kept as 'stream limit', run partial, a later drain brings them in once", async () => {
    const bucket = await createTestBucket();
    const tenant = uniqueName("lower");
    const tenantTag = uniqueName("t");
    // The operator says 20 (budget 10), but Loki allows 4.
    await bed.loki.setTenantLimits(tenant, { max_global_streams_per_user: 4 });
    const history = await groupWithHistory("lower", tenantTag, 12);

    const report = await runBackfillLocally(
      {
        logGroupNames: [history.name],
        start: new Date(history.startMs).toISOString(),
        end: new Date(history.endMs).toISOString(),
        concurrency: 4,
        requestsPerSecond: 20,
      },
      { logs, s3, bucket, env: budgetEnv(tenant) },
    );

    expect(report.status).toBe("partial");
    expect(report.totals.streamLimited).toBeGreaterThan(0);
    expect(report.totals.spilled).toBe(report.totals.streamLimited);
    expect(report.totals.pushed + report.totals.spilled).toBe(history.events.length);
    const hint = report.hints.find((text) => text.includes("refused: stream limit")) ?? "";
    expect(hint).toMatch(/max_global_streams_per_user/);
    expect(hint).toMatch(/chunk_idle_period/);
    expect(hint).toMatch(/LOKI_MAX_GLOBAL_STREAMS_PER_USER=20/);
    expect(hint).toMatch(/can go in after \d{4}-\d\d-\d\dT[\d:.]+Z/);
    expect(hint).toMatch(/loki-shipper replay --source spill/);
    // Nothing lost: what Loki holds and what spill/ keeps are the group's events, each once.
    const spilled = await chunkRecords(bucket, "spill/");
    expect(spilled).toHaveLength(report.totals.spilled);
    const inLoki = await inLokiOf(tenant, `{tenant_tag="${tenantTag}"}`, history.startMs, history.endMs);
    expect([...inLoki, ...expectedEntries(spilled)].sort()).toEqual(expectedEntries(history.events));

    // The operator sets the real limit; once the refused streams' idle period has passed, the drain
    // takes the spill within the budget (all of it: no live traffic here): everything once, spill/ empty.
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS + MARGIN_MS + 200));
    const drain = await runReplayLocally(
      { source: "spill" },
      { logs, s3, bucket, env: budgetEnv(tenant, 4, 1) },
    );

    expect(drain).toMatchObject({ status: "succeeded", totals: { pushed: spilled.length, spilled: 0 } });
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    const after = await inLokiOf(tenant, `{tenant_tag="${tenantTag}"}`, history.startMs, history.endMs);
    expect(after).toEqual(expectedEntries(history.events));
  });
});
