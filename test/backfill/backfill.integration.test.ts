import { beforeAll, describe, expect, it } from "vitest";
import { runBackfillLocally } from "../../cli/local-workflow.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { getJson, runKeys } from "../../functions/core/storage/run-store.ts";
import type { RunReport } from "../../functions/core/workflow/run-report.ts";
import { uniqueName } from "../helpers/aws.ts";
import {
  HOUR,
  lastWholeHour,
  logs,
  RECENT_HISTORY_MS,
  seedLogGroup,
  spreadEvents,
} from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkRecords, s3 } from "../helpers/s3.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * The backfill state machine, executed by aws-local-stepfunctions with the real task code, against
 * moto (CloudWatch Logs, S3) and the Loki test server.
 */
const bed = useTestBed();

describe("backfill of two tagged log groups over the last two hours", () => {
  const now = Date.now();
  const team = uniqueName("payments");
  // Recent history only: a real Loki's queries do not show older just-pushed entries (see RECENT_HISTORY_MS).
  const rangeStart = now - RECENT_HISTORY_MS;
  const busyHour = lastWholeHour(now);
  let checkout: LogEvent[];
  let ledger: LogEvent[];
  const checkoutName = `/aws/lambda/${uniqueName("checkout")}`;
  const ledgerName = `/aws/lambda/${uniqueName("ledger")}`;

  beforeAll(async () => {
    // 12,000 events in one hour: FilterLogEvents pages at 10,000 (moto as AWS), so that slice pages.
    checkout = await seedLogGroup(checkoutName, { team, runtime: "python", name: "checkout" }, [
      ...spreadEvents("checkout-busy", busyHour, busyHour + HOUR, 12_000, 3),
      ...spreadEvents("checkout", rangeStart, now - 10 * 60_000, 720),
    ]);
    ledger = await seedLogGroup(ledgerName, { team, runtime: "nodejs", name: "ledger" }, [
      ...spreadEvents("ledger", rangeStart + 30 * 60_000, now - 10 * 60_000, 900),
    ]);
  });

  it("leaves exactly the CloudWatch events in Loki, with the tag labels, and reports per group", async () => {
    const progress: number[] = [];
    const report: RunReport = await runBackfillLocally(
      {
        tagSelector: `team=${team}`,
        range: `${new Date(rangeStart).toISOString()}..now`,
        // No ingestion delay: in the first minutes of an hour, the default 5 minutes would cut the
        // end of the busy hour off the range. Every event is 10 minutes old or older.
        ingestionDelaySeconds: 0,
        requestsPerSecond: 20,
        concurrency: 4,
      },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
      (seen) => progress.push(seen.pushed),
    );

    expect(report.status).toBe("succeeded");
    const wanted = [...checkout, ...ledger];
    expect(wanted.length).toBeGreaterThan(13_000);

    const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, rangeStart, now + 60_000);
    expect(entryKeys(inLoki)).toEqual(expectedEntries(wanted));
    for (const entry of inLoki) {
      expect(entry.labels).toMatchObject({ team, source: "cloudwatch" });
      expect(entry.labels.time_shard).toBe(
        new Date(Number(BigInt(entry.ns) / 1_000_000n)).toISOString().slice(0, 13),
      );
    }
    const pythonEntries = await lokiEntries(
      bed.loki,
      `{team="${team}", runtime="python", name="checkout"}`,
      rangeStart,
      now,
    );
    expect(pythonEntries).toHaveLength(checkout.length);

    const byGroup = Object.fromEntries(report.groups.map((group) => [group.logGroup, group]));
    expect(byGroup[checkoutName]).toMatchObject({
      exported: checkout.length,
      pushed: checkout.length,
      spilled: 0,
      refused: {},
    });
    expect(byGroup[ledgerName]?.exported).toBe(ledger.length);
    expect(byGroup[checkoutName]?.pages).toBeGreaterThan(byGroup[checkoutName]?.slices ?? 0);
    expect(byGroup[checkoutName]?.eventsPerSecond).toBeGreaterThan(0);
    expect(report.totals.pushed).toBe(wanted.length);
    expect(progress.at(-1)).toBe(wanted.length);

    // The chunks in S3 hold every event once, and the report is stored next to them.
    const chunks = await chunkRecords(bed.bucket, `runs/${report.runId}/chunks/`);
    expect(chunks.map((event) => event.id).sort()).toEqual(wanted.map((event) => event.id).sort());
    expect(await getJson<RunReport>({ s3, bucket: bed.bucket }, runKeys.report(report.runId))).toMatchObject({
      status: "succeeded",
    });
  });
});
