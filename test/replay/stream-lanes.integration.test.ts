import { describe, expect, it } from "vitest";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { CHUNK_FORMAT, logGroupKeySegment } from "../../functions/core/storage/chunk-format.ts";
import { getJson, putChunk, runKeys } from "../../functions/core/storage/run-store.ts";
import type { ReplayCheckpoint } from "../../functions/core/workflow/replay-engine.ts";
import type { ReplayUnit } from "../../functions/core/workflow/slice-export.ts";
import { createWorkflowTasks } from "../../functions/core/workflow/workflow-tasks.ts";
import { cloudWatchEventId } from "../fixtures/subscription.ts";
import { uniqueName } from "../helpers/aws.ts";
import { HOUR, logs } from "../helpers/log-groups.ts";
import { createTestBucket, s3 } from "../helpers/s3.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * In AWS every ReplaySlice invocation is a Lambda of its own, with no shared stream budget: the
 * budget's lanes are kept in S3. Here each invocation gets a fresh task object (a fresh Lambda
 * container), as in AWS, against moto's S3 and the Loki test server.
 */
const now = Date.now();
const HOLD_MS = 3_000;

const bed = useTestBed();

/** A backfill slice's chunk in S3: three events of one hour, so one Loki stream. */
async function sliceOf(
  bucket: string,
  runId: string,
  logGroup: string,
  hoursAgo: number,
): Promise<ReplayUnit> {
  const hour = Math.floor((now - hoursAgo * HOUR) / HOUR) * HOUR;
  const sliceId = new Date(hour).toISOString().slice(0, 13).replace(/-/g, "");
  const records: LogEvent[] = [1, 2, 3].map((minute) => {
    const timestamp = hour + minute * 60_000;
    return { id: cloudWatchEventId(timestamp), timestamp, message: `minute ${minute}`, logStream: "s" };
  });
  const segment = logGroupKeySegment(logGroup);
  await putChunk({ s3, bucket }, runKeys.chunk(runId, segment, sliceId, 0), {
    header: {
      format: CHUNK_FORMAT,
      kind: "backfill",
      logGroup,
      labels: { log_group: logGroup },
      createdAt: new Date().toISOString(),
      runId,
    },
    records,
  });
  return {
    unitId: `backfill-${segment}-${sliceId}`,
    source: "backfill",
    prefix: runKeys.sliceChunks(runId, segment, sliceId),
    logGroup,
  };
}

describe("the stream budget across Lambda invocations (no shared budget object)", () => {
  it("concurrent invocations take separate lanes; a later one waits for the streams its lane opened", async () => {
    const bucket = await createTestBucket();
    const runId = uniqueName("lanes");
    const logGroup = `/aws/lambda/${uniqueName("lanes")}`;
    // 4 streams × 0.5 = 2 for the run, 1 for each of its 2 branches.
    const env = {
      LOKI_URL: bed.loki.url,
      LOKI_TENANT: bed.loki.tenant,
      LOKI_MAX_GLOBAL_STREAMS_PER_USER: "4",
      LOKI_BACKFILL_STREAM_SHARE: "0.5",
      LOKI_CHUNK_IDLE_PERIOD: `${HOLD_MS}ms`,
      LOKI_STREAM_IDLE_MARGIN: "0s",
    };
    const invoke = (unit: ReplayUnit) =>
      createWorkflowTasks({ logs, s3, bucket, env }).replayChunks({
        runId,
        unit,
        options: { concurrency: 2 },
      });
    const waitsOf = async (unit: ReplayUnit) =>
      (await getJson<ReplayCheckpoint>({ s3, bucket }, runKeys.replayCheckpoint(runId, unit.unitId)))
        ?.streamWaitMs;
    const [first, second, third] = [
      await sliceOf(bucket, runId, logGroup, 5),
      await sliceOf(bucket, runId, logGroup, 4),
      await sliceOf(bucket, runId, logGroup, 3),
    ] as [ReplayUnit, ReplayUnit, ReplayUnit];

    const both = await Promise.all([invoke(first), invoke(second)]);
    const started = Date.now();
    const later = await invoke(third);

    expect([...both, later].map((result) => result.pushed)).toEqual([3, 3, 3]);
    expect(await waitsOf(first)).toBe(0);
    expect(await waitsOf(second)).toBe(0);
    // Lane 0 still holds the stream of one of the first two: the third waits until it is idle.
    expect(await waitsOf(third)).toBeGreaterThan(HOLD_MS / 2);
    expect(Date.now() - started).toBeGreaterThan(HOLD_MS / 2);
    const lanes = await Promise.all(
      [0, 1].map((lane) =>
        getJson<Record<string, number>>({ s3, bucket }, `runs/${runId}/stream-lanes/${lane}.json`),
      ),
    );
    expect(lanes.map((lane) => Object.keys(lane ?? {}).length)).toEqual([1, 1]);
  });
});
