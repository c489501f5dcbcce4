import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { runBackfillLocally, WorkflowFailedError } from "../../cli/local-workflow.ts";
import { InputError } from "../../functions/core/errors.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { getJson, runKeys } from "../../functions/core/storage/run-store.ts";
import { awsClientConfig, uniqueName } from "../helpers/aws.ts";
import {
  HOUR,
  interceptedLogs,
  lastWholeHour,
  logs,
  RECENT_HISTORY_MS,
  seedLogGroup,
  spreadEvents,
} from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkRecords, listKeys, s3 } from "../helpers/s3.ts";
import { useTestBed } from "../helpers/test-bed.ts";

const now = Date.now();
/**
 * Recent history only (a real Loki's queries do not show older just-pushed entries, see
 * RECENT_HISTORY_MS): ranges from `since` span two or three hour slices; `busyHour` is a whole one.
 */
const since = now - RECENT_HISTORY_MS;
const busyHour = lastWholeHour(now);
const recently = `${new Date(since).toISOString()}..now`;
/**
 * Runs that read `busyHour` leave out no ingestion delay: in the first minutes of an hour the default
 * 5 minutes would cut the end of the busy hour off the range.
 */
const wholeBusyHour = { ingestionDelaySeconds: 0 };
/** Events until shortly before now: the backfill leaves out the last 5 minutes (CloudWatch's ingestion delay). */
const until = now - 10 * 60_000;

const bed = useTestBed();

function connectionReset(): Error {
  return Object.assign(new Error("socket hang up"), { name: "TimeoutError", code: "ECONNRESET" });
}

function throttling(): Error {
  return Object.assign(new Error("Rate exceeded"), {
    name: "ThrottlingException",
    $fault: "client",
    $metadata: { httpStatusCode: 400 },
  });
}

async function expectExactlyInLokiAndS3(selector: string, runId: string, events: LogEvent[]): Promise<void> {
  const inLoki = await lokiEntries(bed.loki, selector, since, now + 60_000);
  expect(entryKeys(inLoki)).toEqual(expectedEntries(events));
  const inS3 = await chunkRecords(bed.bucket, `runs/${runId}/chunks/`);
  expect(inS3.map((event) => event.id).sort()).toEqual(events.map((event) => event.id).sort());
}

describe("an export that fails part way", () => {
  const team = uniqueName("fault");
  const name = `/aws/lambda/${uniqueName("orders")}`;
  let events: LogEvent[];

  beforeAll(async () => {
    // 25,000 events in one hour: three FilterLogEvents pages for that slice.
    events = await seedLogGroup(name, { team }, [
      ...spreadEvents("orders-busy", busyHour, busyHour + HOUR, 25_000, 4),
      ...spreadEvents("orders", since, until, 300),
    ]);
  });

  it("is resumed by the state machine's Retry from its checkpoint, with no event missing or twice", async () => {
    // Fault (injected, see interceptedLogs): the 3rd FilterLogEvents call fails once, and so does the
    // 2nd export checkpoint write, after its chunks were written.
    const cloudwatch = interceptedLogs((call) => (call === 3 ? connectionReset() : undefined));
    const storage = new S3Client(awsClientConfig());
    const s3Send = storage.send.bind(storage);
    let checkpointWrites = 0;
    storage.send = (async (command: unknown, ...rest: unknown[]) => {
      if (command instanceof PutObjectCommand && command.input.Key?.includes("/checkpoints/export/")) {
        checkpointWrites += 1;
        if (checkpointWrites === 2) throw connectionReset();
      }
      return (s3Send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof storage.send;
    const runId = uniqueName("retry");

    const report = await runBackfillLocally(
      {
        runId,
        logGroupNames: [name],
        range: recently,
        ...wholeBusyHour,
        requestsPerSecond: 25,
        maxEventsPerChunk: 4000,
        maxPagesPerInvocation: 2,
      },
      { logs: cloudwatch.client, s3: storage, bucket: bed.bucket, env: lokiEnv(bed.loki), retryPauseMs: 10 },
    );

    expect(report.status).toBe("succeeded");
    // Both faults happened: the failed page was read again, the lost checkpoint written again.
    expect(cloudwatch.calls.length).toBeGreaterThan(report.totals.pages);
    expect(checkpointWrites).toBeGreaterThan(2);
    expect(report.totals.exported).toBe(events.length);
    await expectExactlyInLokiAndS3(`{team="${team}"}`, runId, events);
  });

  it("is finished by starting the failed run again with the same runId", async () => {
    const runId = uniqueName("restart");
    const otherTeam = uniqueName("restart");
    const restartName = `/aws/lambda/${uniqueName("restart")}`;
    const restartEvents = await seedLogGroup(restartName, { team: otherTeam }, [
      ...spreadEvents("restart-busy", busyHour, busyHour + HOUR, 22_000, 3),
      ...spreadEvents("restart", since, until, 400),
    ]);
    let failing = true;
    // Fault (injected): from the 4th FilterLogEvents call on, every call fails: the retries give up.
    // One slice before the busy hour and the busy hour's three pages make at least four calls.
    const cloudwatch = interceptedLogs((call) => (failing && call >= 4 ? connectionReset() : undefined));
    const request = {
      runId,
      logGroupNames: [restartName],
      range: recently,
      ...wholeBusyHour,
      requestsPerSecond: 25,
      concurrency: 1,
      maxEventsPerChunk: 3000,
    };
    const deps = {
      logs: cloudwatch.client,
      s3,
      bucket: bed.bucket,
      env: lokiEnv(bed.loki),
      retryPauseMs: 10,
    };

    const failure = await runBackfillLocally(request, deps).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).report?.status).toBe("failed");
    expect((failure as WorkflowFailedError).message).toMatch(/CloudWatchReadError|socket hang up/);
    const partial = await chunkRecords(bed.bucket, `runs/${runId}/chunks/`);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(restartEvents.length);

    failing = false;
    const report = await runBackfillLocally(request, deps);

    expect(report.status).toBe("succeeded");
    expect(report.totals.exported).toBe(restartEvents.length);
    expect(report.totals.pushed).toBe(restartEvents.length);
    await expectExactlyInLokiAndS3(`{team="${otherTeam}"}`, runId, restartEvents);
  });
});

describe("a run resumed after its FilterLogEvents token expired", () => {
  it("starts the unfinished slice again and still stores every event once", async () => {
    const team = uniqueName("expired");
    const name = `/aws/lambda/${uniqueName("expired")}`;
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("expired", busyHour, busyHour + HOUR, 21_000, 2),
    );
    const runId = uniqueName("expired");
    let phase: "fail" | "expire" = "fail";
    let expiredOnce = false;
    // Faults (injected): in the first run every call after the first page fails; in the second the
    // first call with a saved token is refused as expired (tokens expire after 24 h; moto's never do).
    const cloudwatch = interceptedLogs((call) => {
      if (phase === "fail" && call >= 2) return connectionReset();
      if (phase === "expire" && !expiredOnce) {
        expiredOnce = true;
        return Object.assign(new Error("The specified nextToken has expired."), {
          name: "InvalidParameterException",
        });
      }
      return undefined;
    });
    const request = {
      runId,
      logGroupNames: [name],
      range: `${new Date(busyHour).toISOString()}..${new Date(busyHour + HOUR).toISOString()}`,
      ...wholeBusyHour,
      requestsPerSecond: 25,
      maxEventsPerChunk: 4000,
    };
    const deps = {
      logs: cloudwatch.client,
      s3,
      bucket: bed.bucket,
      env: lokiEnv(bed.loki),
      retryPauseMs: 10,
    };
    await expect(runBackfillLocally(request, deps)).rejects.toThrow(WorkflowFailedError);
    expect((await chunkRecords(bed.bucket, `runs/${runId}/chunks/`)).length).toBe(10_000);

    phase = "expire";
    const report = await runBackfillLocally(request, deps);

    expect(expiredOnce).toBe(true);
    expect(report.status).toBe("succeeded");
    expect(report.totals.exported).toBe(events.length);
    await expectExactlyInLokiAndS3(`{team="${team}"}`, runId, events);
  });
});

describe("throttled FilterLogEvents", () => {
  it("slows the run down and does not fail it", async () => {
    const team = uniqueName("throttle");
    const name = `/aws/lambda/${uniqueName("throttled")}`;
    const events = await seedLogGroup(name, { team }, spreadEvents("throttled", since, until, 400));
    // ThrottlingException (injected: moto never throttles): calls 2 to 5 are refused. The range
    // has at least two slices, so a sixth call follows them.
    const throttled = new Set([2, 3, 4, 5]);
    const cloudwatch = interceptedLogs((call) => (throttled.has(call) ? throttling() : undefined));

    const report = await runBackfillLocally(
      {
        logGroupNames: [name],
        range: recently,
        ...wholeBusyHour,
        requestsPerSecond: 20,
      },
      { logs: cloudwatch.client, s3, bucket: bed.bucket, env: lokiEnv(bed.loki), retryPauseMs: 10 },
    );

    expect(report.status).toBe("succeeded");
    expect(report.totals.throttled).toBe(4);
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, since, now))).toEqual(
      expectedEntries(events),
    );
    // After each refusal the shared budget is emptied: the next request waits at least one token (50 ms at 20/s).
    for (const call of [2, 3, 4, 5]) {
      const gap = (cloudwatch.calls[call] ?? 0) - (cloudwatch.calls[call - 1] ?? 0);
      expect(gap).toBeGreaterThanOrEqual(40);
    }
  });
});

describe("bad input that needs AWS to notice", () => {
  it("names an unknown log group", async () => {
    const missing = `/aws/lambda/${uniqueName("missing")}`;
    const run = runBackfillLocally(
      { logGroupNames: [missing], range: "1d" },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
    );
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(
      new RegExp(`unknown log group\\(s\\) "${missing}": check the name and the region`),
    );
  });

  it("refuses a range beyond the group's retention, saying where to start", async () => {
    const name = `/aws/lambda/${uniqueName("short")}`;
    await seedLogGroup(name, { team: "short" }, spreadEvents("short", now - 2 * HOUR, now - HOUR, 5), {
      retentionInDays: 1,
    });
    const run = runBackfillLocally(
      { logGroupNames: [name], range: "3d" },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
    );
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(
      /keeps events for 1 days, so nothing before .* exists: start the range at or after that/,
    );
  });

  it("says when a tag selector matches no log group", async () => {
    const run = runBackfillLocally(
      { tagSelector: `team=${uniqueName("nobody")}`, range: "1d" },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
    );
    await expect(run).rejects.toThrow(/has tags matching "team=nobody-[0-9a-f]+"/);
  });

  it("refuses a Loki target it cannot use before anything runs", async () => {
    const name = `/aws/lambda/${uniqueName("target")}`;
    await seedLogGroup(name, { team: "target" }, spreadEvents("target", now - 2 * HOUR, now - HOUR, 5));
    const run = runBackfillLocally(
      { logGroupNames: [name], range: "1d", loki: { LOKI_URL: "not a url" } },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
    );
    await expect(run).rejects.toThrow(/LOKI_URL/);
  });
});

describe("a plan too large for one execution", () => {
  it("runs as child executions of the same definition, each taking a part, and still delivers exactly once", async () => {
    const team = uniqueName("fanout");
    // Five groups over one whole hour: five slices (a slice is one group over one hour).
    const names = Array.from({ length: 5 }, () => `/aws/lambda/${uniqueName("fanout")}`);
    const events: LogEvent[] = [];
    for (const name of names) {
      events.push(
        ...(await seedLogGroup(name, { team }, spreadEvents("fanout", busyHour, busyHour + HOUR, 100))),
      );
    }
    const tasksRun: string[] = [];

    const report = await runBackfillLocally(
      {
        logGroupNames: names,
        range: `${new Date(busyHour).toISOString()}..${new Date(busyHour + HOUR).toISOString()}`,
        ...wholeBusyHour,
        requestsPerSecond: 25,
        slicesPerPart: 2,
      },
      {
        logs,
        s3,
        bucket: bed.bucket,
        env: lokiEnv(bed.loki),
        wrapTask: (state, task) => async (input) => {
          tasksRun.push(state);
          return task(input);
        },
      },
    );

    expect(report.status).toBe("succeeded");
    // 5 slices in parts of 2: three child executions, each loading its part.
    expect(tasksRun.filter((state) => state === "RunPart")).toHaveLength(3);
    expect(tasksRun.filter((state) => state === "LoadPart")).toHaveLength(3);
    expect(tasksRun.filter((state) => state === "FinishRun")).toHaveLength(1);
    expect(report.totals.slices).toBe(5);
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, busyHour, now))).toEqual(
      expectedEntries(events),
    );
  });
});

describe("narrowing the export", () => {
  it("passes filterPattern and logStreamNames to FilterLogEvents", async () => {
    const team = uniqueName("narrow");
    const name = `/aws/lambda/${uniqueName("narrow")}`;
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("narrow", since, until, 300, 3).map((event, index) => ({
        ...event,
        message: index % 4 === 0 ? `ERROR ${event.message}` : event.message,
      })),
    );
    const stream = events[0]?.logStream as string;
    const wanted = events.filter((event) => event.logStream === stream && event.message.startsWith("ERROR"));
    expect(wanted.length).toBeGreaterThan(10);

    const report = await runBackfillLocally(
      {
        logGroupNames: [name],
        range: recently,
        ...wholeBusyHour,
        filterPattern: "ERROR",
        logStreamNames: [stream],
        requestsPerSecond: 25,
      },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
    );

    expect(report.totals.exported).toBe(wanted.length);
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, since, now))).toEqual(
      expectedEntries(wanted),
    );
  });
});

describe("a dry run", () => {
  it("plans, writes the plan and exports nothing", async () => {
    const team = uniqueName("dry");
    // Three groups over one whole hour: three slices, each its own hour stream.
    const names = Array.from({ length: 3 }, () => `/aws/lambda/${uniqueName("dry")}`);
    for (const name of names) {
      await seedLogGroup(
        name,
        { team, runtime: "python" },
        spreadEvents("dry", busyHour, busyHour + HOUR, 10),
      );
    }
    const hour = `${new Date(busyHour).toISOString()}..${new Date(busyHour + HOUR).toISOString()}`;
    const report = await runBackfillLocally(
      {
        tagSelector: `team=${team}`,
        range: hour,
        ...wholeBusyHour,
        dryRun: true,
      },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
    );
    expect(report.status).toBe("planned");
    expect(report.message).toBe(
      "dry run: 3 slice(s) planned, nothing exported; 3 hour stream(s) to open, at most 2500 at a time " +
        "(LOKI_MAX_GLOBAL_STREAMS_PER_USER=5000 × LOKI_BACKFILL_STREAM_SHARE=0.5, each open until idle for " +
        "LOKI_CHUNK_IDLE_PERIOD=30 min + 2 min): the stream budget holds them all at once; the FilterLogEvents pace at least 750 ms",
    );
    const plan = await getJson<{ groups: { logGroup: string; labels: Record<string, string> }[] }>(
      { s3, bucket: bed.bucket },
      runKeys.plan(report.runId),
    );
    expect(plan?.groups.map((group) => group.logGroup).sort()).toEqual([...names].sort());
    for (const group of plan?.groups ?? []) {
      expect(group.labels).toEqual(expect.objectContaining({ team, runtime: "python" }));
    }
    expect(await listKeys(bed.bucket, `runs/${report.runId}/chunks/`)).toEqual([]);
    expect(await lokiEntries(bed.loki, `{team="${team}"}`, busyHour, now)).toEqual([]);

    // The same run for real: the preview's plan is replaced, and everything is exported.
    const real = await runBackfillLocally(
      {
        runId: report.runId,
        tagSelector: `team=${team}`,
        range: hour,
        ...wholeBusyHour,
      },
      { logs, s3, bucket: bed.bucket, env: lokiEnv(bed.loki) },
    );
    expect(real).toMatchObject({ status: "succeeded", totals: { exported: 30, pushed: 30 } });
  });
});
