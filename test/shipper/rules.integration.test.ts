import { describe, expect, it } from "vitest";
import { runBackfillLocally, runReplayLocally } from "../../cli/local-workflow.ts";
import { RuleSet } from "../../functions/core/delivery/rules.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { uniqueName } from "../helpers/aws.ts";
import { HOUR, logs, RECENT_HISTORY_MS, seedLogGroup } from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkRecords, createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * Drop and mask rules on every path, end to end: the live shipper, spill/ and rejected/, the
 * backfill workflow (aws-local-stepfunctions with the real tasks) and the spill drain, against
 * moto and the Loki test server.
 */
const bed = useTestBed();

const RULES = [
  { action: "drop", pattern: "GET /health" },
  { action: "mask", builtin: "all" },
];
const SECRETS = [
  "jane.doe@example.com",
  "203.0.113.42",
  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
];

const env = () => ({ ...lokiEnv(bed.loki), LOG_RULES: JSON.stringify(RULES) });

/** Invocation after invocation: a health check (dropped), a line with secrets, a plain line. */
function traffic(label: string, startMs: number, count: number) {
  return Array.from({ length: count }, (_, index) => {
    const timestamp = startMs + index * 60_000;
    const kind = index % 3;
    const message =
      kind === 0
        ? `GET /health 200 ${label} ${index}`
        : kind === 1
          ? `login ${label} ${index} user=${SECRETS[0]} ip=${SECRETS[1]} Authorization: Bearer ${SECRETS[2]}`
          : `order ${label} ${index} stored`;
    return { timestamp, message, logStream: "2026/11/28/[$LATEST]0a1b2c3d" };
  });
}

/** What Loki must hold: the events as the rules ship them. */
function asShipped(logGroup: string, events: LogEvent[]): LogEvent[] {
  return RuleSet.fromJson(JSON.stringify(RULES)).shape(logGroup, events).events;
}

function expectNoSecret(texts: string[]): void {
  for (const text of texts) for (const secret of SECRETS) expect(text).not.toContain(secret);
}

describe("rules on the live path", () => {
  it("drops the health checks (counted per rule), masks the rest, also in rejected/ and spill/", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("rules-live");
    const name = `/aws/lambda/${uniqueName("login")}`;
    const now = Date.now();
    // The first 3 events are over a week old: Loki would refuse them, so they go to rejected/.
    const events = await seedLogGroup(name, { team }, [
      ...traffic("old", now - 8 * 24 * HOUR, 3),
      ...traffic("new", now - 30 * 60_000, 12),
    ]);

    const reports = await shipLive(name, events, env(), bucket);

    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      received: 15,
      dropped: { "rule 1": 5 },
      pushed: 8,
      refused: { too_old: 2 },
    });
    const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, now - HOUR, now + 60_000);
    const fresh = events.filter((event) => event.timestamp > now - HOUR);
    expect(entryKeys(inLoki)).toEqual(expectedEntries(asShipped(name, fresh)));
    expect(inLoki.some((entry) => entry.line.includes("GET /health"))).toBe(false);
    expect(
      inLoki.some((entry) => entry.line.includes("user=<email> ip=<ipv4> Authorization: Bearer <token>")),
    ).toBe(true);
    expectNoSecret(inLoki.map((entry) => entry.line));
    const rejected = await chunkRecords(bucket, "rejected/");
    expect(rejected).toHaveLength(2);
    expectNoSecret(rejected.map((record) => record.message));
  });

  it("keeps only masked lines in spill/ while Loki is down, and the drain ships them as they are", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("rules-spill");
    const name = `/aws/lambda/${uniqueName("login")}`;
    const now = Date.now();
    const events = await seedLogGroup(name, { team }, traffic("down", now - 20 * 60_000, 9));

    await bed.loki.stop();
    let reports: Awaited<ReturnType<typeof shipLive>>;
    try {
      reports = await shipLive(name, events, env(), bucket);
    } finally {
      await bed.loki.restart();
    }
    expect(reports[0]).toMatchObject({ dropped: { "rule 1": 3 }, spilled: 6, pushed: 0 });
    const spilled = await chunkRecords(bucket, "spill/");
    expect(spilled).toHaveLength(6);
    expectNoSecret(spilled.map((record) => record.message));

    const report = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env: env() });

    expect(report.totals.pushed).toBe(6);
    const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, now - HOUR, now + 60_000);
    expect(entryKeys(inLoki)).toEqual(expectedEntries(asShipped(name, events)));
    expect(await listKeys(bucket, "spill/")).toEqual([]);
  });
});

describe("rules on the backfill path", () => {
  it("writes only masked, kept events into the chunks, counts the drops in the run report, and stores nothing twice over a live window", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("rules-backfill");
    const name = `/aws/lambda/${uniqueName("login")}`;
    const now = Date.now();
    // Recent history only: a real Loki's queries do not show older just-pushed entries (see RECENT_HISTORY_MS).
    const rangeStart = now - RECENT_HISTORY_MS;
    // One event a minute until 10 minutes ago.
    const events = await seedLogGroup(name, { team }, traffic("hist", rangeStart, 110));
    // The last 40 minutes of the window were already shipped live, with the same rules.
    const liveWindow = events.filter((event) => event.timestamp >= rangeStart + 70 * 60_000);
    expect(liveWindow.length).toBeGreaterThan(30);
    await shipLive(name, liveWindow, env(), bucket);

    const report = await runBackfillLocally(
      { logGroupNames: [name], range: `${new Date(rangeStart).toISOString()}..now`, requestsPerSecond: 20 },
      { logs, s3, bucket, env: env() },
    );

    expect(report.status).toBe("succeeded");
    const cutoff = Date.parse(report.startedAt) - 5 * 60_000;
    const wanted = events.filter((event) => event.timestamp < cutoff);
    const health = wanted.filter((event) => event.message.startsWith("GET /health")).length;
    expect(report.groups[0]).toMatchObject({
      dropped: { "rule 1": health },
      exported: wanted.length - health,
    });
    const chunks = await chunkRecords(bucket, `runs/${report.runId}/chunks/`);
    expect(chunks).toHaveLength(wanted.length - health);
    expectNoSecret(chunks.map((record) => record.message));
    expect(chunks.some((record) => record.message.startsWith("GET /health"))).toBe(false);

    // Every event once: live and backfill shaped each event into the same entry, which Loki keeps once.
    const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, rangeStart, now + 60_000);
    const shippedLive = asShipped(name, liveWindow);
    const expected = new Set([...expectedEntries(asShipped(name, wanted)), ...expectedEntries(shippedLive)]);
    expect(entryKeys(inLoki)).toEqual([...expected].sort());
    expectNoSecret(inLoki.map((entry) => entry.line));
  });
});
