import { ListTagsForResourceCommand } from "@aws-sdk/client-cloudwatch-logs";
import { DeleteFunctionCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { beforeAll, describe, expect, it } from "vitest";
import { runBackfillLocally, runReplayLocally } from "../../cli/local-workflow.ts";
import { FunctionFactsCache } from "../../functions/core/labels/function-lookup.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { awsClientConfig, createFunction, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import { HOUR, logs, RECENT_HISTORY_MS, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * Labels from the Lambda function behind an untagged `/aws/lambda/<name>` group, against moto
 * (CreateFunction, GetFunction, ListFunctions, tag:GetResources) and the Loki test server: the
 * same event gets the same labels live, backfilled and replayed from spill, so it is stored once.
 */
const SELECTOR = '{runtime="python", region="eu-central-1", name=~"fun.*"}';

const bed = useTestBed();

describe("an untagged /aws/lambda/fun-python group of a python3.12 function tagged name=fun-python", () => {
  const name = "/aws/lambda/fun-python";
  const now = Date.now();
  // Recent history only: a real Loki's queries do not show older just-pushed entries (see RECENT_HISTORY_MS).
  const historyStart = now - RECENT_HISTORY_MS;
  let history: LogEvent[];
  let live: LogEvent[];
  let outage: LogEvent[];

  beforeAll(async () => {
    await createFunction({ name: "fun-python", runtime: "python3.12", tags: { name: "fun-python" } });
    const all = await seedLogGroup(name, {}, [
      ...spreadEvents("history", historyStart, now - 60 * 60_000, 300),
      ...spreadEvents("live", now - 60 * 60_000, now - 40 * 60_000, 120),
      ...spreadEvents("outage", now - 40 * 60_000, now - 20 * 60_000, 120),
    ]);
    history = all.filter((event) => event.message.startsWith("history"));
    live = all.filter((event) => event.message.startsWith("live"));
    outage = all.filter((event) => event.message.startsWith("outage"));
  });

  it(`is found by ${SELECTOR} live, replayed from spill and backfilled, each event once`, async () => {
    // Given the group has no tags of its own: every label below comes from the function.
    const groupTags = await logs.send(
      new ListTagsForResourceCommand({
        resourceArn: `arn:aws:logs:${TEST_REGION}:${TEST_ACCOUNT}:log-group:${name}`,
      }),
    );
    expect(groupTags.tags ?? {}).toEqual({});
    const bucket = await createTestBucket();
    const env = lokiEnv(bed.loki);

    // When part of it is shipped live,
    const shipped = await shipLive(name, live, env, bucket);
    expect(shipped.reduce((sum, report) => sum + report.pushed, 0)).toBe(live.length);

    // part is spilled while Loki is down and replayed once it is back,
    await bed.loki.stop();
    const spilled = await shipLive(name, outage, env, bucket);
    expect(spilled.reduce((sum, report) => sum + report.spilled, 0)).toBe(outage.length);
    await bed.loki.restart();
    const replay = await runReplayLocally(
      { source: "spill", logGroupNames: [name] },
      { logs, s3, bucket, env },
    );
    expect(replay.totals.pushed).toBe(outage.length);
    expect(await listKeys(bucket, "spill/")).toEqual([]);

    // and a backfill then covers the whole range again, live and replayed events included,
    const backfill = await runBackfillLocally(
      { logGroupNames: [name], range: `${new Date(historyStart).toISOString()}..now` },
      { logs, s3, bucket, env },
    );
    expect(backfill.status).toBe("succeeded");

    // Then the example query finds every event exactly once, labelled from the function.
    const found = await lokiEntries(bed.loki, SELECTOR, historyStart, now + 60_000);
    expect(entryKeys(found)).toEqual(expectedEntries([...history, ...live, ...outage]));
    for (const entry of found) {
      expect(entry.labels).toMatchObject({ runtime: "python", name: "fun-python", region: TEST_REGION });
    }
  });
});

describe("function look-ups under throttling", () => {
  it("back off on TooManyRequestsException and still deliver the batch with the function's labels", async () => {
    const functionName = uniqueName("fun-throttled");
    const group = `/aws/lambda/${functionName}`;
    await createFunction({ name: functionName, runtime: "python3.12", tags: { name: functionName } });
    const events = await seedLogGroup(
      group,
      {},
      spreadEvents("throttled", Date.now() - 10 * 60_000, Date.now() - 60_000, 30),
    );

    // Injected fault: moto never throttles, so the client answers its first three GetFunction calls
    // as Lambda does when over its request rate (429 TooManyRequestsException), before they are sent.
    let throttledAnswers = 0;
    const lambda = new LambdaClient({ ...awsClientConfig(), maxAttempts: 1 });
    lambda.middlewareStack.add(
      (next) => async (args) => {
        if (throttledAnswers < 3) {
          throttledAnswers += 1;
          throw Object.assign(new Error("Rate exceeded"), {
            name: "TooManyRequestsException",
            $metadata: { httpStatusCode: 429 },
          });
        }
        return next(args);
      },
      { step: "initialize", name: "throttleFirstCalls" },
    );

    const bucket = await createTestBucket();
    const reports = await shipLive(group, events, lokiEnv(bed.loki), bucket, {
      lambda,
      functionCache: new FunctionFactsCache(),
    });

    expect(throttledAnswers).toBe(3);
    expect(reports.reduce((sum, report) => sum + report.pushed, 0)).toBe(events.length);
    const found = await lokiEntries(
      bed.loki,
      `{runtime="python", name="${functionName}"}`,
      Date.now() - HOUR,
      Date.now() + 60_000,
    );
    expect(entryKeys(found)).toEqual(expectedEntries(events));
  });
});

describe("a log group whose function no longer exists", () => {
  it("ships with the group's labels and no function labels", async () => {
    const functionName = uniqueName("fun-deleted");
    const group = `/aws/lambda/${functionName}`;
    await createFunction({ name: functionName, runtime: "python3.12", tags: { name: functionName } });
    await new LambdaClient(awsClientConfig()).send(new DeleteFunctionCommand({ FunctionName: functionName }));
    const team = uniqueName("team");
    const events = await seedLogGroup(
      group,
      { team },
      spreadEvents("orphan", Date.now() - 10 * 60_000, Date.now() - 60_000, 10),
    );
    const bucket = await createTestBucket();

    const reports = await shipLive(group, events, lokiEnv(bed.loki), bucket, {
      functionCache: new FunctionFactsCache(),
    });

    expect(reports.reduce((sum, report) => sum + report.pushed, 0)).toBe(events.length);
    const found = await lokiEntries(bed.loki, `{team="${team}"}`, Date.now() - HOUR, Date.now() + 60_000);
    expect(entryKeys(found)).toEqual(expectedEntries(events));
    for (const entry of found) {
      expect(entry.labels).not.toHaveProperty("runtime");
      expect(entry.labels).not.toHaveProperty("name");
    }
  });
});
