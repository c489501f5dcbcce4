import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { runBackfillLocally, runReplayLocally, WorkflowFailedError } from "../../cli/local-workflow.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import type { LokiPushClient } from "../../functions/core/loki/loki-client.ts";
import { createLokiPushClient, parseLokiTarget } from "../../functions/core/loki/loki-target.ts";
import { logGroupKeySegment } from "../../functions/core/storage/chunk-format.ts";
import { SPILL_LOCK_KEY } from "../../functions/core/workflow/replay-plan.ts";
import { TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import {
  HOUR,
  logs,
  putEvents,
  RECENT_HISTORY_MS,
  readGroup,
  seedLogGroup,
  spreadEvents,
} from "../helpers/log-groups.ts";
import {
  entryKeys,
  expectedEntries,
  lokiEntries,
  lokiEnv,
  NO_TENANT_LIMITS_REASON,
  noTenantLimits,
} from "../helpers/loki.ts";
import { createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { expectRoundMatchesLoki, shipLive, shippingRound } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * Replay after outages: spill/ drains, rejected/ after a limit change, a gap re-read from
 * CloudWatch, and replays interrupted half way. Executed by aws-local-stepfunctions with the real
 * task code against moto and the Loki test server (stopped and restarted for the drills).
 */
const now = Date.now();
/** Recent history only: a real Loki's queries do not show older just-pushed entries (see RECENT_HISTORY_MS). */
const since = now - RECENT_HISTORY_MS;

const bed = useTestBed();

describe("outage drill: Loki stops during live shipping of two groups", () => {
  it("drains spill/ after the restart: every event once, spill/ empty", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("drill");
    const groups = [`/aws/lambda/${uniqueName("cart")}`, `/aws/lambda/${uniqueName("search")}`];
    const env = lokiEnv(bed.loki);
    const shipped: LogEvent[] = [];
    let spilled = 0;
    for (const [index, name] of groups.entries()) {
      await seedLogGroup(name, { team, name: `svc${index}` }, []);
    }
    // Live traffic in rounds; Loki is down for rounds 2 to 4.
    for (let round = 0; round < 6; round++) {
      if (round === 2) await bed.loki.stop();
      if (round === 5) await bed.loki.restart();
      const lokiUp = round < 2 || round === 5;
      for (const name of groups) {
        const start = now - 50 * 60_000 + round * 5 * 60_000;
        const before = new Set((await readGroup(name)).map((event) => event.id));
        await putEvents(name, spreadEvents(`${name.slice(-8)}-r${round}`, start, start + 5 * 60_000, 150, 2));
        const fresh = (await readGroup(name)).filter((event) => !before.has(event.id));
        shipped.push(...fresh);
        const shipping = await shippingRound(bucket, await shipLive(name, fresh, env, bucket));
        expectRoundMatchesLoki(shipping, lokiUp, `round ${round}, ${name}`);
        spilled += shipping.spilled;
      }
    }

    const report = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });

    expect(report.status).toBe("succeeded");
    expect(report.totals.pushed).toBe(spilled);
    const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, now - 2 * HOUR, now + 60_000);
    expect(entryKeys(inLoki)).toEqual(expectedEntries(shipped));
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    expect(await listKeys(bucket, SPILL_LOCK_KEY)).toEqual([]);
  });

  it("skips a drain while Loki is not ready, and while another drain holds the lock", async () => {
    const bucket = await createTestBucket();
    const env = lokiEnv(bed.loki);
    await bed.loki.stop();
    try {
      const notReady = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });
      expect(notReady.status).toBe("skipped");
      expect(notReady.message).toMatch(/Loki did not answer ready/);
    } finally {
      await bed.loki.restart();
    }
    const holder = {
      runId: "drain-elsewhere",
      acquiredAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + HOUR).toISOString(),
    };
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: SPILL_LOCK_KEY, Body: JSON.stringify(holder) }),
    );
    const locked = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });
    expect(locked.status).toBe("skipped");
    expect(locked.message).toMatch(/another drain \(drain-elsewhere/);
    // The lock of the other drain is left alone.
    expect(await listKeys(bucket, SPILL_LOCK_KEY)).toEqual([SPILL_LOCK_KEY]);

    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: SPILL_LOCK_KEY }));
    const nothingToDo = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });
    expect(nothingToDo).toMatchObject({ status: "succeeded", groups: [], totals: { pushed: 0 } });
    expect(await listKeys(bucket, SPILL_LOCK_KEY)).toEqual([]);
  });
});

describe("archiving replayed chunks", () => {
  it("moves a replayed spill chunk to archive/ when asked, leaving spill/ empty", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("archive");
    const name = `/aws/lambda/${uniqueName("archive")}`;
    const env = lokiEnv(bed.loki);
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("archive", now - 40 * 60_000, now - 35 * 60_000, 120, 1),
    );
    await bed.loki.stop();
    await shipLive(name, events, env, bucket);
    await bed.loki.restart();
    const spillKeys = await listKeys(bucket, "spill/");
    expect(spillKeys).toHaveLength(1);

    const report = await runReplayLocally({ source: "spill", archive: true }, { logs, s3, bucket, env });

    expect(report.totals.pushed).toBe(events.length);
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    expect(await listKeys(bucket, "archive/")).toEqual(spillKeys.map((key) => `archive/${key}`));
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, now - HOUR, now))).toEqual(
      expectedEntries(events),
    );
  });
});

describe("Loki answering 429 during a replay", () => {
  it("backs off and retries until Loki takes the events", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("throttled");
    const name = `/aws/lambda/${uniqueName("throttled")}`;
    const env = lokiEnv(bed.loki);
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("throttled", now - 50 * 60_000, now - 45 * 60_000, 200, 2),
    );
    await bed.loki.stop();
    await shipLive(name, events, env, bucket);
    await bed.loki.restart();
    // Three pushes answered 429 (the test server's fault injection: real Loki does so over the tenant's rate).
    bed.loki.setFault({ kind: "status", status: 429, body: "Ingestion rate limit exceeded", times: 3 });

    const report = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });

    expect(report.status).toBe("succeeded");
    expect(report.totals.retries).toBeGreaterThanOrEqual(3);
    expect(report.totals.spilled).toBe(0);
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, now - HOUR, now))).toEqual(
      expectedEntries(events),
    );
    expect(await listKeys(bucket, "spill/")).toEqual([]);
  });
});

describe("a replay killed half way", () => {
  it("is restarted and stores nothing twice, and spill/ ends empty", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("killed");
    const name = `/aws/lambda/${uniqueName("killed")}`;
    const env = lokiEnv(bed.loki);
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("killed", now - 90 * 60_000, now - 30 * 60_000, 600, 3),
    );
    // Loki down while shipping, in batches of 50: many spill chunks.
    await bed.loki.stop();
    for (let offset = 0; offset < events.length; offset += 50) {
      await shipLive(name, events.slice(offset, offset + 50), env, bucket);
    }
    await bed.loki.restart();
    const spillKeys = await listKeys(bucket, "spill/");
    expect(spillKeys.length).toBeGreaterThan(4);

    // Fault (injected): the process "dies" after 3 pushes: every later push throws, like a killed
    // Lambda whose work is lost between a push and its checkpoint.
    let pushes = 0;
    const killedAfterThree = async (
      clientEnv: Record<string, string | undefined>,
    ): Promise<LokiPushClient> => {
      const client = await createLokiPushClient(parseLokiTarget(clientEnv));
      return {
        ...client,
        pushUrl: client.pushUrl,
        format: client.format,
        limits: client.limits,
        maxBatchBytes: client.maxBatchBytes,
        maxBatchEntries: client.maxBatchEntries,
        push: async (streams, options) => {
          pushes += 1;
          if (pushes > 3)
            throw Object.assign(new Error("Runtime exited with error: signal: killed"), {
              name: "Runtime.ExitError",
            });
          return client.push(streams, options);
        },
      };
    };
    const first = await runReplayLocally(
      { source: "spill", concurrency: 1 },
      { logs, s3, bucket, env, lokiClient: killedAfterThree, retryPauseMs: 5 },
    ).catch((error: unknown) => error);
    expect(first).toBeInstanceOf(WorkflowFailedError);
    const left = await listKeys(bucket, "spill/");
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThan(spillKeys.length);

    const second = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env });

    expect(second.status).toBe("succeeded");
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, now - 2 * HOUR, now))).toEqual(
      expectedEntries(events),
    );
    expect(await listKeys(bucket, "spill/")).toEqual([]);
  });

  it("of a backfill run's chunks, run twice, stores nothing twice", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("twice");
    const name = `/aws/lambda/${uniqueName("twice")}`;
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("twice", since, now - 10 * 60_000, 800, 2),
    );
    const env = lokiEnv(bed.loki);
    const backfill = await runBackfillLocally(
      {
        logGroupNames: [name],
        range: `${new Date(since).toISOString()}..now`,
        requestsPerSecond: 25,
      },
      { logs, s3, bucket, env },
    );
    const replayed = await runReplayLocally(
      { source: "run", sourceRunId: backfill.runId },
      { logs, s3, bucket, env },
    );
    const again = await runReplayLocally(
      { source: "run", sourceRunId: backfill.runId },
      { logs, s3, bucket, env },
    );

    expect(replayed.totals.pushed).toBe(events.length);
    expect(again.totals.pushed).toBe(events.length);
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, since, now))).toEqual(
      expectedEntries(events),
    );
    // The run's chunks stay: they are the backfill's record, not a queue.
    expect((await listKeys(bucket, `runs/${backfill.runId}/chunks/`)).length).toBeGreaterThan(0);
  });
});

describe("re-reading a gap from CloudWatch", () => {
  it("fills what Loki missed during an outage window; what already arrived is not stored twice", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("gap");
    const name = `/aws/lambda/${uniqueName("gap")}`;
    const env = lokiEnv(bed.loki);
    const start = since;
    const events = await seedLogGroup(name, { team }, spreadEvents("gap", start, now - 10 * 60_000, 1200, 3));
    const outageStart = start + 40 * 60_000;
    const outageEnd = start + 80 * 60_000;
    // Live shipping delivered everything but the outage window (and spilled nothing: it was lost upstream).
    await shipLive(
      name,
      events.filter((event) => event.timestamp < outageStart || event.timestamp >= outageEnd),
      env,
      bucket,
    );
    const before = await lokiEntries(bed.loki, `{team="${team}"}`, start, now);
    expect(before.length).toBeLessThan(events.length);

    // The window is named generously: it overlaps what Loki already holds on both sides.
    const report = await runBackfillLocally(
      {
        logGroupNames: [name],
        range: `${new Date(outageStart - 15 * 60_000).toISOString()}..${new Date(outageEnd + 15 * 60_000).toISOString()}`,
        requestsPerSecond: 25,
      },
      { logs, s3, bucket, env },
    );

    expect(report.status).toBe("succeeded");
    expect(report.totals.pushed).toBeGreaterThan(events.length - before.length);
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, start, now))).toEqual(
      expectedEntries(events),
    );
  });
});

describe("backfill beside live traffic", () => {
  it("leaves every event of the group in Loki exactly once, found by its tag selector", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("beside");
    const name = `/aws/lambda/${uniqueName("beside")}`;
    const env = lokiEnv(bed.loki);
    // History from just inside the range, which starts at `since` (a range such as "2h" would start
    // later when the test starts late on a loaded machine, and cut the first events off).
    const historyStart = since + 60_000;
    await seedLogGroup(
      name,
      { team, runtime: "python" },
      spreadEvents("history", historyStart, now - 20 * 60_000, 3000, 3),
    );
    const liveShipped: LogEvent[] = [];
    let stop = false;
    // The live shipper keeps shipping now-data (and the last 20 minutes, which the backfill also reads).
    const live = (async () => {
      const historyTail = (await readGroup(name, now - 30 * 60_000)).slice();
      await shipLive(name, historyTail, env, bucket);
      liveShipped.push(...historyTail);
      let round = 0;
      while (!stop) {
        const seen = new Set((await readGroup(name, now - HOUR)).map((event) => event.id));
        await putEvents(name, [
          { timestamp: Date.now(), message: `live ${round}`, logStream: "2026/11/25/[$LATEST]live" },
        ]);
        const fresh = (await readGroup(name, now - HOUR)).filter((event) => !seen.has(event.id));
        await shipLive(name, fresh, env, bucket);
        liveShipped.push(...fresh);
        round += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const report = await runBackfillLocally(
      {
        tagSelector: `team=${team},runtime=python`,
        range: `${new Date(since).toISOString()}..now`,
        requestsPerSecond: 25,
      },
      { logs, s3, bucket, env },
    );
    stop = true;
    await live;

    expect(report.status).toBe("succeeded");
    expect(liveShipped.length).toBeGreaterThan(5);
    const everything = await readGroup(name);
    const inLoki = await lokiEntries(
      bed.loki,
      `{team="${team}", runtime="python"}`,
      historyStart,
      Date.now() + 60_000,
    );
    expect(entryKeys(inLoki)).toEqual(expectedEntries(everything));
    expect(
      inLoki.every((entry) => entry.labels.account === TEST_ACCOUNT && entry.labels.region === TEST_REGION),
    ).toBe(true);
  });
});

describe("too old for Loki", () => {
  it.skipIf(noTenantLimits)(
    `is refused before pushing, reported with the setting to change, and replayed from rejected/ after raising it (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      const bucket = await createTestBucket();
      const team = uniqueName("old");
      const name = `/aws/lambda/${uniqueName("old")}`;
      const events = await seedLogGroup(
        name,
        { team },
        spreadEvents("old", since, now - 10 * 60_000, 400, 2),
      );
      // The tenant keeps one hour (and the shipper is told so), like reject_old_samples_max_age: 1h;
      // the history stays recent enough for a real Loki's queries to show it after the replay.
      await bed.loki.setTenantLimits(bed.loki.tenant, { reject_old_samples_max_age: "1h" });
      const env = { ...lokiEnv(bed.loki), LOKI_REJECT_OLD_SAMPLES_MAX_AGE: "1h" };
      const tooOld = events.filter((event) => event.timestamp < Date.now() - HOUR + 60_000);
      expect(tooOld.length).toBeGreaterThan(100);

      const report = await runBackfillLocally(
        {
          logGroupNames: [name],
          range: `${new Date(since).toISOString()}..now`,
          requestsPerSecond: 25,
        },
        { logs, s3, bucket, env },
      );

      const refused = report.totals.refused.too_old ?? 0;
      expect(Math.abs(refused - tooOld.length)).toBeLessThanOrEqual(5);
      expect(report.totals.pushed + refused).toBe(events.length);
      expect(report.hints.join("\n")).toMatch(/reject_old_samples_max_age/);
      const rejectedKeys = await listKeys(bucket, `rejected/${logGroupKeySegment(name)}/`);
      expect(rejectedKeys.length).toBeGreaterThan(0);

      await bed.loki.setTenantLimits(bed.loki.tenant, { reject_old_samples_max_age: "168h" });
      const replay = await runReplayLocally(
        { source: "rejected", logGroupNames: [name], loki: { LOKI_REJECT_OLD_SAMPLES_MAX_AGE: "168h" } },
        { logs, s3, bucket, env },
      );

      expect(replay.status).toBe("succeeded");
      expect(replay.totals.pushed).toBe(refused);
      expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, since, now))).toEqual(
        expectedEntries(events),
      );
      expect(await listKeys(bucket, `rejected/${logGroupKeySegment(name)}/`)).toEqual([]);
    },
  );
});
