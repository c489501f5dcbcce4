import { type FunctionConfiguration, LambdaClient } from "@aws-sdk/client-lambda";
import { ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import { describe, expect, it } from "vitest";
import { runBackfillLocally } from "../../cli/local-workflow.ts";
import { TenantLookupError } from "../../functions/core/errors.ts";
import { CustomLogGroupCache } from "../../functions/core/labels/function-log-groups.ts";
import { awsClientConfig, createFunction, uniqueName } from "../helpers/aws.ts";
import { HOUR, logs, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { createTestBucket, s3 } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * Function labels for a function that logs to a custom log group (`LoggingConfig.LogGroup`), not
 * to `/aws/lambda/<name>`. moto 5.2.1 keeps no LoggingConfig (CreateFunction drops it; GetFunction
 * and ListFunctions never return it), so these tests add that one field to moto's real
 * ListFunctions answers; the listing itself, the functions' tags and runtimes come from moto.
 */
const bed = useTestBed();

interface LambdaOnMoto {
  client: LambdaClient;
  /** ListFunctions listings started (first pages): what one cache period costs. */
  listings: number;
}

/**
 * A Lambda client on moto whose ListFunctions answers carry `LoggingConfig.LogGroup` (the field
 * moto lacks): the group in `logGroups`, else the default one; they fail with `listingError` when given.
 */
function lambdaOnMoto(logGroups: Record<string, string>, listingError?: Error): LambdaOnMoto {
  const client = new LambdaClient(awsClientConfig());
  const seen: LambdaOnMoto = { client, listings: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== "ListFunctionsCommand") return next(args);
      if (!(args.input as { Marker?: string }).Marker) seen.listings += 1;
      if (listingError) throw listingError;
      const result = await next(args);
      const output = result.output as { Functions?: FunctionConfiguration[] };
      // Like Lambda, every function has a LoggingConfig: its custom group or /aws/lambda/<name>.
      for (const fn of output.Functions ?? []) {
        const logGroup = logGroups[fn.FunctionName ?? ""] ?? `/aws/lambda/${fn.FunctionName}`;
        fn.LoggingConfig = { LogGroup: logGroup, LogFormat: "Text" };
      }
      return result;
    },
    { step: "initialize", name: "addLoggingConfig" },
  );
  return seen;
}

const recentEvents = (label: string, count: number) =>
  spreadEvents(label, Date.now() - 10 * 60_000, Date.now() - 60_000, count);

async function inLoki(selector: string) {
  return lokiEntries(bed.loki, selector, Date.now() - HOUR, Date.now() + 60_000);
}

describe("a function that logs to a custom log group (LoggingConfig.LogGroup)", () => {
  it("gives the group's events its tags and runtime live, listing the functions once per cache period", async () => {
    const functionName = uniqueName("payments");
    const group = `/custom/${functionName}`;
    await createFunction({
      name: functionName,
      runtime: "python3.12",
      tags: { name: functionName, team: "pay" },
    });
    const events = await seedLogGroup(group, {}, recentEvents("custom", 20));
    const lambda = lambdaOnMoto({ [functionName]: group });
    const overrides = { lambda: lambda.client, customLogGroupCache: new CustomLogGroupCache() };
    const bucket = await createTestBucket();

    // Two invocations of the same warm container.
    await shipLive(group, events.slice(0, 10), lokiEnv(bed.loki), bucket, overrides);
    await shipLive(group, events.slice(10), lokiEnv(bed.loki), bucket, overrides);

    const found = await inLoki(`{runtime="python", name="${functionName}"}`);
    expect(entryKeys(found)).toEqual(expectedEntries(events));
    for (const entry of found) expect(entry.labels).toMatchObject({ team: "pay", log_group: group });
    expect(lambda.listings).toBe(1);
  });

  it("lists nothing for /aws/lambda/* groups: their function is in their name, or not in this region", async () => {
    const functionName = uniqueName("fun-default");
    const group = `/aws/lambda/${functionName}`;
    await createFunction({ name: functionName, runtime: "python3.12", tags: { name: functionName } });
    const events = await seedLogGroup(group, {}, recentEvents("default", 5));
    // A Lambda@Edge replica's group: its function lives in us-east-1.
    const edgeGroup = `/aws/lambda/us-east-1.${functionName}`;
    const edgeEvents = await seedLogGroup(edgeGroup, {}, recentEvents("edge", 5));
    const lambda = lambdaOnMoto({});
    const overrides = { lambda: lambda.client, customLogGroupCache: new CustomLogGroupCache() };

    await shipLive(group, events, lokiEnv(bed.loki), await createTestBucket(), overrides);
    const edge = await shipLive(
      edgeGroup,
      edgeEvents,
      lokiEnv(bed.loki),
      await createTestBucket(),
      overrides,
    );

    expect(entryKeys(await inLoki(`{runtime="python", name="${functionName}"}`))).toEqual(
      expectedEntries(events),
    );
    expect(edge.reduce((sum, report) => sum + report.pushed, 0)).toBe(edgeEvents.length);
    expect(lambda.listings).toBe(0);
  });

  it("gives a group that several functions share none of their labels, only its own", async () => {
    const group = `/custom/${uniqueName("shared")}`;
    const names = [uniqueName("fun-a"), uniqueName("fun-b")];
    for (const name of names) await createFunction({ name, runtime: "python3.12", tags: { name } });
    const team = uniqueName("team");
    const events = await seedLogGroup(group, { team }, recentEvents("shared", 5));
    const lambda = lambdaOnMoto(Object.fromEntries(names.map((name) => [name, group])));

    await shipLive(group, events, lokiEnv(bed.loki), await createTestBucket(), {
      lambda: lambda.client,
      customLogGroupCache: new CustomLogGroupCache(),
    });

    const found = await inLoki(`{team="${team}"}`);
    expect(entryKeys(found)).toEqual(expectedEntries(events));
    for (const entry of found) {
      expect(entry.labels).not.toHaveProperty("runtime");
      expect(entry.labels).not.toHaveProperty("name");
    }
  });

  it("ships with the group's own labels when ListFunctions is refused, and does not ask again at once", async () => {
    const group = `/custom/${uniqueName("denied")}`;
    const team = uniqueName("team");
    const events = await seedLogGroup(group, { team }, recentEvents("denied", 5));
    // Injected fault: moto does not enforce IAM, so the refusal a role without
    // lambda:ListFunctions gets is made here.
    const denied = Object.assign(new Error("not authorized to perform: lambda:ListFunctions"), {
      name: "AccessDeniedException",
      $metadata: { httpStatusCode: 403 },
    });
    const lambda = lambdaOnMoto({}, denied);

    // Two log streams: two invocations of the same warm container.
    const reports = await shipLive(group, events, lokiEnv(bed.loki), await createTestBucket(), {
      lambda: lambda.client,
      customLogGroupCache: new CustomLogGroupCache(),
    });

    expect(reports.reduce((sum, report) => sum + report.pushed, 0)).toBe(events.length);
    expect(entryKeys(await inLoki(`{team="${team}"}`))).toEqual(expectedEntries(events));
    expect(lambda.listings).toBe(1);
  });

  it("with tenant routing on, fails each invocation while ListFunctions is refused, asking again only after a minute", async () => {
    const group = `/custom/${uniqueName("routed")}`;
    const tenant = uniqueName("team");
    const events = await seedLogGroup(group, {}, recentEvents("routed", 4));
    // Injected fault, as above: the function may hold the tenant tag, so no tenant can be chosen.
    const denied = Object.assign(new Error("not authorized to perform: lambda:ListFunctions"), {
      name: "AccessDeniedException",
      $metadata: { httpStatusCode: 403 },
    });
    const lambda = lambdaOnMoto({}, denied);
    const overrides = { lambda: lambda.client, customLogGroupCache: new CustomLogGroupCache() };
    const env = { ...lokiEnv(bed.loki), LABEL_TENANT_TAG: "loki_tenant", LOKI_TENANTS_ALLOWED: tenant };
    const bucket = await createTestBucket();

    for (const invocation of [1, 2]) {
      await expect(
        shipLive(group, events, env, bucket, overrides),
        `invocation ${invocation}`,
      ).rejects.toThrow(TenantLookupError);
    }

    expect(lambda.listings).toBe(1);
    expect(
      await lokiEntries(
        { url: bed.loki.lokiUrl, tenant },
        `{log_group="${group}"}`,
        Date.now() - HOUR,
        Date.now() + 60_000,
      ),
    ).toEqual([]);
  });

  it("gives the group's events the function's labels when backfilled too", async () => {
    const functionName = uniqueName("ledger");
    const group = `/custom/${functionName}`;
    await createFunction({ name: functionName, runtime: "nodejs22.x", tags: { name: functionName } });
    const events = await seedLogGroup(
      group,
      {},
      spreadEvents("backfilled", Date.now() - 40 * 60_000, Date.now() - 10 * 60_000, 30),
    );
    const lambda = lambdaOnMoto({ [functionName]: group });
    const functions = {
      lambda: lambda.client,
      tagging: new ResourceGroupsTaggingAPIClient(awsClientConfig()),
    };

    const report = await runBackfillLocally(
      { logGroupNames: [group], range: "1h", requestsPerSecond: 25 },
      { logs, s3, bucket: await createTestBucket(), env: lokiEnv(bed.loki), functions },
    );

    expect(report.status).toBe("succeeded");
    expect(entryKeys(await inLoki(`{runtime="nodejs", name="${functionName}"}`))).toEqual(
      expectedEntries(events),
    );
  });
});
