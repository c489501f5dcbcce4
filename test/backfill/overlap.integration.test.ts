import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { runBackfillLocally } from "../../cli/local-workflow.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { getJson, runKeys } from "../../functions/core/storage/run-store.ts";
import type { ExportCheckpoint } from "../../functions/core/workflow/slice-export.ts";
import { createWorkflowTasks } from "../../functions/core/workflow/workflow-tasks.ts";
import { awsClientConfig, uniqueName } from "../helpers/aws.ts";
import {
  HOUR,
  interceptedLogs,
  lastWholeHour,
  logs,
  seedLogGroup,
  spreadEvents,
} from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkRecords, listKeys, s3 } from "../helpers/s3.ts";
import { useTestBed } from "../helpers/test-bed.ts";

// Recent history, so that any Loki answers queries for it at once (see RECENT_HISTORY_MS). The
// hour may have ended minutes ago: the runs leave out no ingestion delay.
const sliceStart = lastWholeHour(Date.now());
const range = `${new Date(sliceStart).toISOString()}..${new Date(sliceStart + HOUR).toISOString()}`;

const bed = useTestBed();

function countInLoki(team: string): Promise<number> {
  return lokiEntries(bed.loki, `{team="${team}"}`, sliceStart, sliceStart + HOUR).then(
    (found) => found.length,
  );
}

/** Waits until Loki holds at least `count` entries of the team (at most 10 s); returns how many it holds. */
async function waitForLoki(team: string, count: number): Promise<number> {
  const giveUpAt = Date.now() + 10_000;
  let found = await countInLoki(team);
  while (found < count && Date.now() < giveUpAt) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    found = await countInLoki(team);
  }
  return found;
}

async function exportCheckpointOf(runId: string): Promise<ExportCheckpoint | undefined> {
  const [key] = await listKeys(bed.bucket, runKeys.exportCheckpoints(runId));
  return key ? getJson<ExportCheckpoint>({ s3, bucket: bed.bucket }, key) : undefined;
}

/** A run over the one-hour slice, one slice at a time, in chunks of 4,000 events. */
function oneSliceRequest(runId: string, logGroup: string) {
  return {
    runId,
    logGroupNames: [logGroup],
    range,
    ingestionDelaySeconds: 0,
    requestsPerSecond: 25,
    concurrency: 1,
    maxEventsPerChunk: 4000,
  };
}

/** Notes the name of every Task state the run enters. */
function recordTasks(tasksRun: string[]) {
  return (state: string, task: (input: unknown) => Promise<unknown>) => (input: unknown) => {
    tasksRun.push(state);
    return task(input);
  };
}

async function expectOnceInLokiAndS3(team: string, runId: string, events: LogEvent[]): Promise<void> {
  const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, sliceStart, sliceStart + HOUR);
  expect(entryKeys(inLoki)).toEqual(expectedEntries(events));
  const inS3 = await chunkRecords(bed.bucket, `runs/${runId}/chunks/`);
  expect(inS3.map((event) => event.id).sort()).toEqual(events.map((event) => event.id).sort());
}

describe("a slice's export and replay overlap", () => {
  it("has the chunks of a slice's first pages in Loki while its export still reads the last page", async () => {
    const team = uniqueName("overlap");
    const name = `/aws/lambda/${uniqueName("overlap")}`;
    // 25,000 events in one hour: one slice of three FilterLogEvents pages (10,000 each from moto).
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("overlap", sliceStart, sliceStart + HOUR, 25_000, 3),
    );
    const runId = uniqueName("overlap");
    const seen: { inLoki: number; exportDone: boolean | undefined }[] = [];
    // Observation, not a fault: the third FilterLogEvents call (the slice's last page) waits until
    // Loki holds the first two pages' entries (at most 10 s), and notes what Loki and the export
    // checkpoint hold at that moment. Exporting and then replaying would find Loki empty here.
    const cloudwatch = interceptedLogs(async (call) => {
      if (call === 3) {
        const inLoki = await waitForLoki(team, 20_000);
        seen.push({ inLoki, exportDone: (await exportCheckpointOf(runId))?.done });
      }
      return undefined;
    });

    const tasksRun: string[] = [];

    const report = await runBackfillLocally(oneSliceRequest(runId, name), {
      logs: cloudwatch.client,
      s3,
      bucket: bed.bucket,
      env: lokiEnv(bed.loki),
      wrapTask: recordTasks(tasksRun),
    });

    expect(seen).toEqual([{ inLoki: 20_000, exportDone: false }]);
    // The export's replay pushed every chunk: the state machine skips ReplaySlice.
    expect(tasksRun.filter((state) => state.endsWith("Slice"))).toEqual(["ExportSlice"]);
    expect(report).toMatchObject({ status: "succeeded", totals: { exported: 25_000, pushed: 25_000 } });
    await expectOnceInLokiAndS3(team, runId, events);
  });

  it("survives a crash between a chunk's push and its replay checkpoint: the retry pushes it again and Loki keeps every event once", async () => {
    const team = uniqueName("crash");
    const name = `/aws/lambda/${uniqueName("crash")}`;
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("crash", sliceStart, sliceStart + HOUR, 12_000, 2),
    );
    const runId = uniqueName("crash");
    // Fault (injected: moto cannot fail a write on demand): the first replay checkpoint write fails,
    // after its chunk was pushed. The ExportSlice invocation fails, and the state machine retries it.
    const storage = new S3Client(awsClientConfig());
    const s3Send = storage.send.bind(storage);
    let replayCheckpointWrites = 0;
    let inLokiAtCrash = 0;
    storage.send = (async (command: unknown, ...rest: unknown[]) => {
      if (command instanceof PutObjectCommand && command.input.Key?.includes("/checkpoints/replay/")) {
        replayCheckpointWrites += 1;
        if (replayCheckpointWrites === 1) {
          inLokiAtCrash = await countInLoki(team);
          throw Object.assign(new Error("socket hang up"), { name: "TimeoutError", code: "ECONNRESET" });
        }
      }
      return (s3Send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof storage.send;
    const tasksRun: string[] = [];

    const report = await runBackfillLocally(oneSliceRequest(runId, name), {
      logs,
      s3: storage,
      bucket: bed.bucket,
      env: lokiEnv(bed.loki),
      retryPauseMs: 10,
      wrapTask: recordTasks(tasksRun),
    });

    // The first chunk (4,000 events) was in Loki when its checkpoint write failed; the export was
    // retried, and ReplaySlice pushed what the failed replay had not recorded.
    expect(inLokiAtCrash).toBe(4000);
    expect(tasksRun.filter((state) => state === "ExportSlice").length).toBeGreaterThanOrEqual(2);
    expect(tasksRun).toContain("ReplaySlice");
    expect(report).toMatchObject({ status: "succeeded", totals: { exported: 12_000, pushed: 12_000 } });
    await expectOnceInLokiAndS3(team, runId, events);
  });

  it("in AWS (a fresh task object per invocation, no shared budget) pushes within a stream lane of the run, kept in S3", async () => {
    const team = uniqueName("lane");
    const name = `/aws/lambda/${uniqueName("lane")}`;
    // Two slices, two hour streams: from the last whole hour until a minute ago, or, in the first
    // two minutes of an hour (whose slice would hold no event yet), the two whole hours before it.
    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR;
    const early = now - hour < 2 * 60_000;
    const start = early ? hour - 2 * HOUR : hour - HOUR;
    const end = early ? hour - 60_000 : now - 60_000;
    const events = await seedLogGroup(name, { team }, spreadEvents("lane", start, end, 600, 2));
    const runId = uniqueName("lane");
    const env = {
      ...lokiEnv(bed.loki),
      LOKI_MAX_GLOBAL_STREAMS_PER_USER: "8",
      LOKI_BACKFILL_STREAM_SHARE: "0.5",
    };
    const lambda = () => createWorkflowTasks({ logs, s3, bucket: bed.bucket, env });
    const plan = await lambda().planBackfill({
      request: {
        logGroupNames: [name],
        range: `${new Date(start).toISOString()}..${early ? new Date(hour).toISOString() : "now"}`,
        concurrency: 2,
        ingestionDelaySeconds: 0,
      },
      executionName: runId,
    });
    expect(plan.part.slices).toHaveLength(2);

    const exported = await Promise.all(
      plan.part.slices.map((slice) => lambda().exportSlice({ runId, slice, options: plan.part.options })),
    );

    expect(exported.map(({ status, replayed }) => ({ status, replayed }))).toEqual([
      { status: "done", replayed: true },
      { status: "done", replayed: true },
    ]);
    const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, start, Date.now() + 60_000);
    expect(entryKeys(inLoki)).toEqual(expectedEntries(events));
    // Each invocation took one of the run's 2 lanes (8 × 0.5 / 2 = 2 streams each), saved the hour
    // stream it opened there, and freed the lane.
    const laneKeys = await listKeys(bed.bucket, `runs/${runId}/stream-lanes/`);
    expect(laneKeys.filter((key) => key.endsWith(".lock"))).toEqual([]);
    const lanes = await Promise.all(
      laneKeys.map((key) => getJson<Record<string, number>>({ s3, bucket: bed.bucket }, key)),
    );
    expect(lanes.map((lane) => Object.keys(lane ?? {}).length)).toEqual([1, 1]);
  });
});
