import { describe, expect, it } from "vitest";
import { GroupMetrics, replayPath } from "../../functions/core/delivery/delivery-metrics.ts";
import { keepEventChunk } from "../../functions/core/delivery/spill.ts";
import type { DeliveryPath } from "../../functions/core/metric-names.ts";
import { createWorkflowTasks } from "../../functions/core/workflow/workflow-tasks.ts";
import { shipSubscriptionEvent } from "../../functions/shipper/ship-subscription.ts";
import {
  cloudWatchEventId,
  dataMessage,
  lineOfBytes,
  logEvent,
  subscriptionEvent,
} from "../fixtures/subscription.ts";
import { uniqueName } from "../helpers/aws.ts";
import { createTaggedLogGroup, logs } from "../helpers/log-groups.ts";
import { createTestBucket, s3 } from "../helpers/s3.ts";
import { lambdaContext, shipperConfig, shipperDeps, shipperEnv } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * Freshness: how old events are when Loki accepts them (EventAgeAtPush, one value per accepted
 * push, per log group and delivery path). The shipper and the replay task run for real against
 * moto and the Loki test server; only the EMF output is collected instead of printed.
 */

type EmfDocument = Record<string, unknown> & {
  _aws: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
};

/** GroupMetrics that keeps each document it would publish. */
class CollectedGroupMetrics extends GroupMetrics {
  readonly documents: EmfDocument[] = [];
  override publish(): void {
    this.documents.push(this.serialize() as unknown as EmfDocument);
  }
}

function collector() {
  const created: { logGroup: string; path: DeliveryPath; metrics: CollectedGroupMetrics }[] = [];
  const factory = (logGroup: string, path: DeliveryPath = "live") => {
    const metrics = new CollectedGroupMetrics(logGroup, path, "freshness-test");
    created.push({ logGroup, path, metrics });
    return metrics;
  };
  return { created, factory };
}

const values = (document: EmfDocument | undefined, name: string): number[] => {
  const value = document?.[name];
  return (Array.isArray(value) ? value : [value]) as number[];
};

const HOUR = 3_600_000;

const bed = useTestBed();

describe("live freshness", () => {
  it("records the age of the oldest event of each accepted push, per hour stream, under Path=live and the log group", async () => {
    // Half past the hour before the last whole hour: in Loki's accepted window whatever the day,
    // and 45 min back always falls into the hour before.
    const clock = Math.floor(Date.now() / HOUR) * HOUR - 30 * 60_000;
    const logGroup = await createTaggedLogGroup("fresh", { runtime: "python" });
    const config = shipperConfig(
      shipperEnv({ bucket: bed.bucket, lokiUrl: bed.loki.url, tenant: uniqueName("fresh") }),
    );
    const { created, factory } = collector();
    // Two hours: two streams (time_shard), so two pushes and two values.
    const events = [
      logEvent(clock - 90_000, "a"),
      logEvent(clock - 10_000, "b"),
      logEvent(clock - 45 * 60_000, "previous hour"),
    ];

    const result = await shipSubscriptionEvent(
      subscriptionEvent(dataMessage({ logGroup, events })),
      lambdaContext(),
      config,
      shipperDeps(config, { now: () => clock, groupMetrics: factory }),
    );

    expect(result.outcome === "delivered" && result.report.pushed).toBe(3);
    expect(created.map(({ logGroup, path }) => ({ logGroup, path }))).toEqual([{ logGroup, path: "live" }]);
    const document = created[0]?.metrics.documents[0];
    expect(values(document, "EventAgeAtPush").sort((a, b) => a - b)).toEqual([90_000, 45 * 60_000]);
    expect(document).toMatchObject({ LogGroup: logGroup, Path: "live", EventsShipped: 3, EventsSpilled: 0 });
    expect(document?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([["service", "Path", "LogGroup"]]);
  });

  it("leaves the events Loki refused out of the age: only what Loki stored counts", async () => {
    const clock = Date.now();
    const logGroup = await createTaggedLogGroup("fresh-refused", { runtime: "go" });
    // The shipper believes lines up to 1 MB pass, Loki refuses over 256 KB: Loki's partial 400
    // names the oldest (long) entry, and the stored ones are younger.
    const config = shipperConfig(
      shipperEnv(
        { bucket: bed.bucket, lokiUrl: bed.loki.url, tenant: uniqueName("fresh-refused") },
        { LOKI_MAX_LINE_SIZE: "1MB" },
      ),
    );
    const { created, factory } = collector();
    const events = [logEvent(clock - 120_000, lineOfBytes(300_000)), logEvent(clock - 20_000, "kept")];

    const result = await shipSubscriptionEvent(
      subscriptionEvent(dataMessage({ logGroup, events })),
      lambdaContext(),
      config,
      shipperDeps(config, { now: () => clock, groupMetrics: factory }),
    );

    expect(result.outcome === "delivered" && result.report).toMatchObject({
      pushed: 1,
      refused: { line_too_long: 1 },
    });
    const document = created[0]?.metrics.documents[0];
    expect(values(document, "EventAgeAtPush")).toEqual([20_000]);
    expect(document).toMatchObject({ EventsShipped: 1, EventsRefused: 1 });
  });
});

describe("replay and backfill freshness", () => {
  it("records a spill drain under Path=replay, apart from live", async () => {
    const clock = Date.now();
    const replayBucket = await createTestBucket();
    const logGroup = "/aws/lambda/drained";
    const records = [0, 1, 2].map((index) => ({
      id: cloudWatchEventId(clock - 600_000 + index * 1000),
      timestamp: clock - 600_000 + index * 1000,
      message: `spilled ${index}`,
      logStream: "stream",
    }));
    await keepEventChunk(
      s3,
      replayBucket,
      {
        kind: "spill",
        logGroup,
        labels: { source: "cloudwatch", log_group: logGroup },
        reason: "Loki down",
        records,
      },
      () => clock - 500_000,
    );
    const { created, factory } = collector();
    const tasks = createWorkflowTasks({
      logs,
      s3,
      bucket: replayBucket,
      env: { LOKI_URL: bed.loki.url, LOKI_TENANT: uniqueName("drain") },
      now: () => clock,
      lokiReady: async () => true,
      groupMetrics: factory,
    });

    const plan = await tasks.planReplay({ request: { source: "spill" }, executionName: "drain-freshness" });
    for (const unit of plan.units)
      await tasks.replayChunks({ runId: plan.run.runId, unit, options: plan.options });

    expect(created.map(({ logGroup, path }) => ({ logGroup, path }))).toEqual([{ logGroup, path: "replay" }]);
    const document = created[0]?.metrics.documents[0];
    expect(values(document, "EventAgeAtPush")).toEqual([600_000]);
    expect(document).toMatchObject({ Path: "replay", LogGroup: logGroup, EventsShipped: 3 });
  });

  it("counts a backfill's chunks, and a later replay of a backfill run, as backfill", () => {
    expect(replayPath("backfill")).toBe("backfill");
    expect(replayPath("run")).toBe("backfill");
    expect(replayPath("spill")).toBe("replay");
    expect(replayPath("rejected")).toBe("replay");
  });
});
