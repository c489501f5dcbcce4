import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackfillLocally, runReplayLocally } from "../../cli/local-workflow.ts";
import { deliverEvents } from "../../functions/core/delivery/deliver.ts";
import { TenantLookupError } from "../../functions/core/errors.ts";
import { parseLabelOptions } from "../../functions/core/labels/labels.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { createLokiPushClient, parseLokiTarget } from "../../functions/core/loki/loki-target.ts";
import { sizedEvents } from "../fixtures/subscription.ts";
import { awsClientConfig, createFunction, uniqueName } from "../helpers/aws.ts";
import { logs, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import {
  entryKeys,
  expectedEntries,
  lokiEntries,
  lokiEnv,
  NO_TENANT_LIMITS_REASON,
  noTenantLimits,
  startTestLoki,
  type TestLoki,
} from "../helpers/loki.ts";
import { createTestBucket, listKeys, readChunks, s3 } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";

/**
 * The tenant drill: three log groups name their Loki tenant by a `loki_tenant` tag, two of them
 * allowed (one by name on the group, one by pattern on its Lambda function), one not. Shipped live,
 * spilled during an outage and drained, then backfilled over the same range: each allowed group's
 * events are in its own tenant exactly once and in no other; the third group's events are only
 * in rejected/, with the reason. Everything is real: moto, the Loki test server behind the fault
 * proxy, the shipper's and the state machines' own code.
 */
const TAG = "loki_tenant";
const MINUTE = 60_000;
let loki: TestLoki;

beforeAll(async () => {
  loki = await startTestLoki();
});
afterAll(async () => {
  await loki?.close();
});

interface DrillGroup {
  logGroup: string;
  tenant: string;
  events: LogEvent[];
}

/** Seeds a group with history, live and outage events (all within the last hour: any Loki shows them). */
async function seedDrillGroup(
  logGroup: string,
  tags: Record<string, string>,
  tenant: string,
): Promise<DrillGroup> {
  const now = Date.now();
  const events = await seedLogGroup(logGroup, tags, [
    ...spreadEvents("history", now - 50 * MINUTE, now - 40 * MINUTE, 40),
    ...spreadEvents("live", now - 40 * MINUTE, now - 30 * MINUTE, 40),
    ...spreadEvents("outage", now - 30 * MINUTE, now - 20 * MINUTE, 40),
  ]);
  return { logGroup, tenant, events };
}

const phase = (group: DrillGroup, name: string) =>
  group.events.filter((event) => event.message.startsWith(name));

describe("tenant per log group", () => {
  it("puts each allowed group's events into its own tenant exactly once, live, drained and backfilled, and keeps the refused group's in rejected/ only", async () => {
    // Given two allowed tenants (one by name, one by pattern) and one that is not allowed,
    const tenantA = uniqueName("team-a");
    const tenantB = uniqueName("shared");
    const tenantC = uniqueName("intruder");
    const fnB = uniqueName("fun-tenant-b");
    await createFunction({ name: fnB, runtime: "python3.12", tags: { [TAG]: tenantB, name: fnB } });
    const groups = [
      await seedDrillGroup(`/drill/${uniqueName("tenant-a")}`, { [TAG]: tenantA, drill: "tenant" }, tenantA),
      // An untagged Lambda group: its function's tag chooses the tenant.
      await seedDrillGroup(`/aws/lambda/${fnB}`, {}, tenantB),
      await seedDrillGroup(`/drill/${uniqueName("tenant-c")}`, { [TAG]: tenantC, drill: "tenant" }, tenantC),
    ];
    const [groupA, groupB, groupC] = groups as [DrillGroup, DrillGroup, DrillGroup];
    const bucket = await createTestBucket();
    const env = {
      ...lokiEnv(loki),
      LABEL_TENANT_TAG: TAG,
      LOKI_TENANTS_ALLOWED: `${tenantA},/^shared-[0-9a-f]{8}$/`,
    };

    // When they are shipped live,
    for (const group of groups) {
      const reports = await shipLive(group.logGroup, phase(group, "live"), env, bucket);
      const pushed = reports.reduce((sum, report) => sum + report.pushed, 0);
      expect({ group: group.logGroup, pushed }).toEqual({
        group: group.logGroup,
        pushed: group === groupC ? 0 : phase(group, "live").length,
      });
    }
    // spilled while Loki is down and drained once it is back,
    await loki.stop();
    for (const group of groups) await shipLive(group.logGroup, phase(group, "outage"), env, bucket);
    await loki.restart();
    const spilledKeys = await listKeys(bucket, "spill/");
    expect(spilledKeys.length).toBeGreaterThan(0);
    for (const { chunk } of await readChunks(bucket, "spill/")) {
      expect(chunk.header.tenant).toBe(
        groups.find((group) => group.logGroup === chunk.header.logGroup)?.tenant,
      );
    }
    const drain = await runReplayLocally(
      { source: "spill", logGroupNames: groups.map((group) => group.logGroup) },
      { logs, s3, bucket, env },
    );
    expect(drain.totals.pushed).toBe(phase(groupA, "outage").length + phase(groupB, "outage").length);
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    // and then backfilled over the whole range, live and drained events included,
    const startMs = Math.min(...groups.flatMap((group) => group.events.map((event) => event.timestamp)));
    const backfill = await runBackfillLocally(
      {
        logGroupNames: groups.map((group) => group.logGroup),
        range: `${new Date(startMs).toISOString()}..now`,
        // The refused group too (left out by default): its history must end in rejected/ as well.
        includeRefusedTenants: true,
      },
      { logs, s3, bucket, env },
    );

    // Then each allowed group's events are in its own tenant exactly once, and in no other tenant;
    const tenants = [loki.tenant, tenantA, tenantB, tenantC];
    for (const group of groups) {
      for (const tenant of tenants) {
        const found = await lokiEntries(
          { url: loki.lokiUrl, tenant },
          `{log_group="${group.logGroup}"}`,
          startMs - 1,
          Date.now() + MINUTE,
        );
        const expected = tenant === group.tenant && group !== groupC ? expectedEntries(group.events) : [];
        expect({ group: group.logGroup, tenant, entries: entryKeys(found) }).toEqual({
          group: group.logGroup,
          tenant,
          entries: expected,
        });
        for (const entry of found) expect(entry.labels).not.toHaveProperty(TAG);
      }
    }
    // the refused group's events are all in rejected/, naming its tenant, the reason and what to do,
    const rejected = await readChunks(bucket, `rejected/${encodeURIComponent(groupC.logGroup)}/`);
    const rejectedIds = new Set(rejected.flatMap(({ chunk }) => chunk.records.map((record) => record.id)));
    expect([...rejectedIds].sort()).toEqual(groupC.events.map((event) => event.id).sort());
    for (const { chunk } of rejected) {
      expect(chunk.header.tenant).toBe(tenantC);
      expect(chunk.header.reason).toContain(`tenant "${tenantC}" is not in LOKI_TENANTS_ALLOWED`);
      expect(chunk.header.reason).toContain("never sent to another tenant");
    }
    // nothing else was refused, and the run report names the refusal.
    expect(await listKeys(bucket, "rejected/")).toEqual(rejected.map(({ key }) => key));
    expect(backfill.status).toBe("partial");
    expect(backfill.totals.refused).toEqual({ tenant_not_allowed: groupC.events.length });
    expect(backfill.groups.find((group) => group.logGroup === groupC.logGroup)?.tenant).toBe(tenantC);
    expect(backfill.hints.join("\n")).toContain("LOKI_TENANTS_ALLOWED");
  });
});

describe("per-tenant 429 handling", () => {
  it.skipIf(noTenantLimits)(
    `keeps pushing tenant B's events while tenant A answers 429 in the same delivery (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      // Given tenant A over its ingestion rate on every push (Loki answers 429, stores nothing)
      const tenantA = uniqueName("throttled");
      const tenantB = uniqueName("calm");
      await loki.setTenantLimits(tenantA, { ingestion_rate_mb: 0.0001, ingestion_burst_size_mb: 0.0002 });
      const bucket = await createTestBucket();
      const env = {
        ...lokiEnv(loki),
        // One push at a time, tenant A's first: a session shared by both tenants would give up on A
        // (its circuit opens) before B's turn, and spill B's events unpushed.
        LOKI_PUSH_CONCURRENCY: "1",
        LABEL_TENANT_TAG: TAG,
        LOKI_TENANTS_ALLOWED: `${tenantA},${tenantB}`,
      };
      const startMs = Date.now() - 5 * MINUTE;
      const batchOf = (tenant: string, name: string) => ({
        logGroup: `/drill/${name}`,
        labels: { source: "cloudwatch", log_group: `/drill/${name}` },
        tenant,
        events: sizedEvents(4, 500, startMs).map((event) => ({ ...event, logStream: "s" })),
      });
      const throttled = batchOf(tenantA, uniqueName("throttled"));
      const calm = batchOf(tenantB, uniqueName("calm"));

      // When one delivery carries a batch of each tenant, A's first
      const report = await deliverEvents([throttled, calm], {
        loki: await createLokiPushClient(parseLokiTarget(env)),
        tenants: parseLabelOptions(env).tenants,
        s3,
        bucket,
        deadline: Date.now() + 20_000,
        retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
      });

      // Then B's events are all in tenant B, A's are in spill/ for tenant A with Loki's 429, in no tenant.
      expect({ pushed: report.pushed, spilled: report.spilled }).toEqual({ pushed: 4, spilled: 4 });
      const range = [startMs - 1, Date.now() + MINUTE] as const;
      const inB = await lokiEntries(
        { url: loki.lokiUrl, tenant: tenantB },
        `{log_group="${calm.logGroup}"}`,
        ...range,
      );
      expect(entryKeys(inB)).toEqual(expectedEntries(calm.events));
      const inA = await lokiEntries(
        { url: loki.lokiUrl, tenant: tenantA },
        `{log_group=~"/drill/.+"}`,
        ...range,
      );
      expect(inA).toEqual([]);
      const spilled = await readChunks(bucket, "spill/");
      expect(spilled.map(({ chunk }) => [chunk.header.logGroup, chunk.header.tenant])).toEqual([
        [throttled.logGroup, tenantA],
      ]);
      expect(spilled[0]?.chunk.header.reason).toMatch(/^Loki answered 429/);
    },
  );
});

describe("a tag look-up that fails with tenant routing on", () => {
  it("fails the invocation (Lambda retries it) rather than send the events to a tenant that may be wrong", async () => {
    const tenantA = uniqueName("team-a");
    const logGroup = `/drill/${uniqueName("lookup-fails")}`;
    const events = await seedLogGroup(
      logGroup,
      { [TAG]: tenantA },
      spreadEvents("lost-tag", Date.now() - 5 * MINUTE, Date.now() - MINUTE, 5),
    );
    // Injected fault: moto always answers ListTagsForResource, so the client fails it as CloudWatch
    // Logs does when it is unavailable, before the request is sent.
    const failingLogs = new CloudWatchLogsClient({ ...awsClientConfig(), maxAttempts: 1 });
    failingLogs.middlewareStack.add(
      () => async () => {
        throw Object.assign(new Error("Service unavailable"), { name: "ServiceUnavailableException" });
      },
      { step: "initialize", name: "failEveryCall" },
    );
    const bucket = await createTestBucket();
    const env = { ...lokiEnv(loki), LABEL_TENANT_TAG: TAG, LOKI_TENANTS_ALLOWED: tenantA };

    await expect(shipLive(logGroup, events, env, bucket, { logs: failingLogs })).rejects.toThrow(
      TenantLookupError,
    );

    const range = [Date.now() - 10 * MINUTE, Date.now() + MINUTE] as const;
    for (const tenant of [loki.tenant, tenantA]) {
      expect(await lokiEntries({ url: loki.lokiUrl, tenant }, `{log_group="${logGroup}"}`, ...range)).toEqual(
        [],
      );
    }
    expect(await listKeys(bucket, "")).toEqual([]);
  });
});

describe("the allow list at replay time", () => {
  it("keeps spilled events of a tenant no longer allowed in rejected/, and replays them to that tenant once it is allowed again", async () => {
    // Given events spilled for tenant X while Loki was down,
    const tenantX = uniqueName("team-x");
    const logGroup = `/drill/${uniqueName("recheck")}`;
    const now = Date.now();
    const events = await seedLogGroup(
      logGroup,
      { [TAG]: tenantX },
      spreadEvents("recheck", now - 20 * MINUTE, now - 10 * MINUTE, 20),
    );
    const bucket = await createTestBucket();
    const allowing = { ...lokiEnv(loki), LABEL_TENANT_TAG: TAG, LOKI_TENANTS_ALLOWED: tenantX };
    await loki.stop();
    await shipLive(logGroup, events, allowing, bucket);
    await loki.restart();

    // When the drain runs after X was taken off the allow list,
    const notAllowing = { ...allowing, LOKI_TENANTS_ALLOWED: uniqueName("someone-else") };
    const drain = await runReplayLocally(
      { source: "spill", logGroupNames: [logGroup] },
      { logs, s3, bucket, env: notAllowing },
    );

    // Then its events are in rejected/ for X with the reason, and in no tenant;
    expect(drain.totals.refused).toEqual({ tenant_not_allowed: events.length });
    expect(drain.groups.map((group) => [group.logGroup, group.tenant])).toEqual([[logGroup, tenantX]]);
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    const rejected = await readChunks(bucket, "rejected/");
    const rejectedIds = rejected.flatMap(({ chunk }) => chunk.records.map((record) => record.id));
    expect(rejectedIds.sort()).toEqual(events.map((event) => event.id).sort());
    for (const { chunk } of rejected) {
      expect(chunk.header.tenant).toBe(tenantX);
      expect(chunk.header.reason).toContain(`tenant "${tenantX}" is not in LOKI_TENANTS_ALLOWED`);
    }
    const range = [now - 30 * MINUTE, Date.now() + MINUTE] as const;
    const selector = `{log_group="${logGroup}"}`;
    for (const tenant of [loki.tenant, tenantX]) {
      expect(await lokiEntries({ url: loki.lokiUrl, tenant }, selector, ...range)).toEqual([]);
    }

    // and once X is allowed again, replaying rejected/ puts them into X exactly once, and only there.
    const replay = await runReplayLocally(
      { source: "rejected", logGroupNames: [logGroup] },
      { logs, s3, bucket, env: allowing },
    );
    expect(replay.totals.pushed).toBe(events.length);
    expect(await listKeys(bucket, "rejected/")).toEqual([]);
    expect(entryKeys(await lokiEntries({ url: loki.lokiUrl, tenant: tenantX }, selector, ...range))).toEqual(
      expectedEntries(events),
    );
    expect(await lokiEntries({ url: loki.lokiUrl, tenant: loki.tenant }, selector, ...range)).toEqual([]);
  });
});
