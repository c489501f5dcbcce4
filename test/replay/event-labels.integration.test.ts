import { describe, expect, it } from "vitest";
import { runReplayLocally } from "../../cli/local-workflow.ts";
import { uniqueName } from "../helpers/aws.ts";
import { logs, putEvents, readGroup, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { expectRoundMatchesLoki, shipLive, shippingRound } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * A spilled chunk remembers the per-entry label choices it was shipped with: replayed by a
 * workflow whose own settings differ, its events still land in the streams they were meant for.
 */
const now = Date.now();

const bed = useTestBed();

describe("replay of a spill shipped with the log stream as a label", () => {
  it("puts the events into their log_stream streams", async () => {
    const bucket = await createTestBucket();
    const name = `/aws/lambda/${uniqueName("streams")}`;
    await seedLogGroup(name, { team: uniqueName("t") }, []);
    await putEvents(name, spreadEvents("stream-label", now - 20 * 60_000, now - 10 * 60_000, 40, 2));
    const events = await readGroup(name);

    await bed.loki.stop();
    const env = { ...lokiEnv(bed.loki), LABEL_LOG_STREAM: "true" };
    const shipping = await shippingRound(bucket, await shipLive(name, events, env, bucket));
    await bed.loki.restart();
    expectRoundMatchesLoki(shipping, false, "Loki down");

    // The replay runs with the default settings: log stream as structured metadata, not a label.
    const report = await runReplayLocally(
      { source: "spill", logGroupNames: [name] },
      { logs, s3, bucket, env: lokiEnv(bed.loki) },
    );
    expect(report.totals.pushed).toBe(events.length);
    expect(await listKeys(bucket, "spill/")).toEqual([]);

    const logStream = events[0]?.logStream ?? "";
    const inThatStream = await lokiEntries(
      bed.loki,
      `{log_stream="${logStream}"}`,
      now - 3_600_000,
      now + 60_000,
    );
    expect(entryKeys(inThatStream)).toEqual(
      expectedEntries(events.filter((event) => event.logStream === logStream)),
    );
  });
});
