import type { CloudWatchLogsClient, FilterLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { describe, expect, it } from "vitest";
import {
  CloudWatchThrottledError,
  readFilterPage,
} from "../../functions/core/cloudwatch/cloudwatch-pager.ts";
import { RateBudget } from "../../functions/core/cloudwatch/rate-budget.ts";
import { putJson, runKeys } from "../../functions/core/storage/run-store.ts";
import { exportSlice } from "../../functions/core/workflow/slice-export.ts";
import { uniqueName } from "../helpers/aws.ts";
import { chunkRecords, createTestBucket, s3 } from "../helpers/s3.ts";

/**
 * FilterLogEvents answers moto does not produce: empty pages that still carry a nextToken (AWS
 * returns them while it searches) and endless throttling. A scripted client stands in for
 * CloudWatch here; S3 is moto.
 */
function scriptedLogs(
  pages: Array<
    { events: { eventId: string; timestamp: number; message: string }[]; nextToken?: string } | Error
  >,
) {
  const requests: FilterLogEventsCommand["input"][] = [];
  const client = {
    send: async (command: FilterLogEventsCommand) => {
      requests.push(command.input);
      const page = pages[requests.length - 1];
      if (!page) throw new Error(`no page scripted for request ${requests.length}`);
      if (page instanceof Error) throw page;
      return {
        events: page.events.map((event) => ({ ...event, logStreamName: "stream-a" })),
        nextToken: page.nextToken,
      };
    },
  } as unknown as CloudWatchLogsClient;
  return { client, requests };
}

const noWait = { sleep: async () => {} };

describe("readFilterPage", () => {
  it("gives up on endless throttling with a message that says what to lower", async () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    const { client, requests } = scriptedLogs(Array.from({ length: 5 }, () => throttled));
    const budget = new RateBudget(1000, noWait);
    const read = readFilterPage(client, { logGroupName: "/g", startMs: 0, endMs: 10 }, undefined, {
      budget,
      maxAttempts: 5,
      ...noWait,
    });
    await expect(read).rejects.toThrow(CloudWatchThrottledError);
    await expect(read).rejects.toThrow(/throttled 5 times in a row; lower requestsPerSecond or concurrency/);
    expect(requests).toHaveLength(5);
  });

  it("asks for the half-open window: FilterLogEvents' endTime is inclusive", async () => {
    const { client, requests } = scriptedLogs([{ events: [] }]);
    await readFilterPage(
      client,
      { logGroupName: "/g", startMs: 1000, endMs: 2000, filterPattern: "ERROR" },
      undefined,
      {
        budget: new RateBudget(1000, noWait),
      },
    );
    expect(requests[0]).toMatchObject({
      logGroupName: "/g",
      startTime: 1000,
      endTime: 1999,
      filterPattern: "ERROR",
    });
  });
});

describe("exportSlice", () => {
  it("follows empty pages that still carry a nextToken to the end of the slice", async () => {
    const bucket = await createTestBucket();
    const store = { s3, bucket };
    const runId = uniqueName("empty-pages");
    const event = (n: number) => ({ eventId: `id-${n}`, timestamp: 1000 + n, message: `line ${n}` });
    const { client, requests } = scriptedLogs([
      { events: [], nextToken: "t1" },
      { events: [event(1), event(2)], nextToken: "t2" },
      { events: [], nextToken: "t3" },
      { events: [], nextToken: "t4" },
      { events: [event(3)] },
    ]);
    await putJson(store, runKeys.group(runId, "%2Fg"), { logGroup: "/g", labels: { team: "a" } });
    const slice = { logGroup: "/g", sliceId: "19700101T00", startMs: 0, endMs: 3_600_000 };
    const options = {
      requestsPerSecond: 1000,
      concurrency: 1,
      maxEventsPerChunk: 2,
      maxPagesPerInvocation: 3,
      loki: {},
      labels: {},
    };
    const deps = { logs: client, store, budget: new RateBudget(1000, noWait), deadline: Date.now() + 60_000 };

    const first = await exportSlice(runId, slice, options, deps);
    const second = await exportSlice(runId, slice, options, deps);

    expect(first).toMatchObject({ status: "continue", events: 2 });
    expect(second).toMatchObject({ status: "done", events: 3, invocations: 2 });
    expect(requests.map((request) => request.nextToken)).toEqual([undefined, "t1", "t2", "t3", "t4"]);
    const records = await chunkRecords(bucket, `runs/${runId}/chunks/`);
    expect(records.map((record) => record.id)).toEqual(["id-1", "id-2", "id-3"]);
  });
});
