import { DeleteFunctionCommand, LambdaClient, TagResourceCommand } from "@aws-sdk/client-lambda";
import { ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import { describe, expect, it } from "vitest";
import { lambdaFunctionName, runtimeFamily } from "../../functions/core/labels/function-labels.ts";
import {
  BULK_LOOKUP_THRESHOLD,
  FunctionFactsCache,
  getFunctionFacts,
  getFunctionFactsInBulk,
} from "../../functions/core/labels/function-lookup.ts";
import { awsClientConfig, createFunction, uniqueName } from "../helpers/aws.ts";

/** Function look-ups against moto's Lambda and Tagging APIs. */

/** A client whose calls are counted by command name (and, for `throttle`, refused first). */
function countingClient<T extends LambdaClient | ResourceGroupsTaggingAPIClient>(
  client: T,
  throttle: { name: string; times: number } = { name: "", times: 0 },
): { client: T; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  let refused = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName);
      calls[command] = (calls[command] ?? 0) + 1;
      if (command === throttle.name && refused < throttle.times) {
        refused += 1;
        throw Object.assign(new Error("Rate exceeded"), {
          name: throttle.name === "GetResourcesCommand" ? "ThrottledException" : "TooManyRequestsException",
          $metadata: { httpStatusCode: 429 },
        });
      }
      return next(args);
    },
    { step: "initialize", name: "countCalls" },
  );
  return { client, calls };
}

describe("lambdaFunctionName and runtimeFamily", () => {
  it.each([
    ["/aws/lambda/fun-python", "fun-python"],
    ["/aws/lambda/us-east-1.edge-fn", undefined],
    ["/aws/ecs/service", undefined],
    ["/aws/lambda/", undefined],
  ])("%s -> %s", (group, name) => {
    expect(lambdaFunctionName(group)).toBe(name);
  });

  it.each([
    ["python3.12", "python"],
    ["nodejs22.x", "nodejs"],
    ["java21", "java"],
    ["provided.al2023", "provided"],
    ["dotnet8", "dotnet"],
    ["ruby3.3", "ruby"],
  ])("%s -> %s", (runtime, family) => {
    expect(runtimeFamily(runtime)).toBe(family);
  });
});

describe("getFunctionFacts", () => {
  it("reads tags and runtime with GetFunction once per TTL", async () => {
    const name = uniqueName("fun-cached");
    const arn = await createFunction({ name, runtime: "java21", tags: { team: "a" } });
    let clock = 0;
    const cache = new FunctionFactsCache({ ttlMs: 1000, negativeTtlMs: 100 }, () => clock);
    const { client, calls } = countingClient(new LambdaClient(awsClientConfig()));

    expect(await getFunctionFacts(client, name, cache)).toEqual({
      found: true,
      tags: { team: "a" },
      runtime: "java21",
      cached: false,
    });
    await new LambdaClient(awsClientConfig()).send(
      new TagResourceCommand({ Resource: arn, Tags: { owner: "me" } }),
    );
    expect(await getFunctionFacts(client, name, cache)).toMatchObject({ tags: { team: "a" }, cached: true });
    clock = 1001;
    expect(await getFunctionFacts(client, name, cache)).toMatchObject({
      tags: { team: "a", owner: "me" },
      cached: false,
    });
    expect(calls.GetFunctionCommand).toBe(2);
  });

  it("remembers a deleted function for the negative TTL only", async () => {
    const name = uniqueName("fun-gone");
    await createFunction({ name, runtime: "python3.12" });
    await new LambdaClient(awsClientConfig()).send(new DeleteFunctionCommand({ FunctionName: name }));
    let clock = 0;
    const cache = new FunctionFactsCache({ ttlMs: 1000, negativeTtlMs: 100 }, () => clock);
    const { client, calls } = countingClient(new LambdaClient(awsClientConfig()));

    expect(await getFunctionFacts(client, name, cache)).toEqual({ found: false, tags: {}, cached: false });
    expect(await getFunctionFacts(client, name, cache)).toMatchObject({ found: false, cached: true });
    clock = 101;
    await createFunction({ name, runtime: "python3.12", tags: { back: "yes" } });
    expect(await getFunctionFacts(client, name, cache)).toMatchObject({ found: true, tags: { back: "yes" } });
    expect(calls.GetFunctionCommand).toBe(2);
  });
});

describe("getFunctionFactsInBulk", () => {
  it("lists many functions with ListFunctions and tag:GetResources, with the facts GetFunction gives", async () => {
    const prefix = uniqueName("fun-bulk");
    const names = Array.from({ length: BULK_LOOKUP_THRESHOLD + 5 }, (_, index) => `${prefix}-${index}`);
    for (const [index, name] of names.entries()) {
      await createFunction({
        name,
        runtime: index % 2 === 0 ? "python3.12" : "nodejs22.x",
        ...(index % 3 === 0 ? {} : { tags: { name, team: `t${index % 4}` } }),
      });
    }
    const missing = `${prefix}-missing`;
    const lambda = countingClient(new LambdaClient(awsClientConfig()));
    const tagging = countingClient(new ResourceGroupsTaggingAPIClient(awsClientConfig()));

    const bulk = await getFunctionFactsInBulk(
      { lambda: lambda.client, tagging: tagging.client },
      [...names, missing],
      new FunctionFactsCache(),
    );

    const one = new LambdaClient(awsClientConfig());
    for (const name of names) {
      const { cached: _cached, ...single } = await getFunctionFacts(one, name, new FunctionFactsCache());
      expect(bulk.get(name)).toEqual(single);
    }
    expect(bulk.get(missing)).toEqual({ found: false, tags: {} });
    expect(lambda.calls.GetFunctionCommand ?? 0).toBe(0);
    expect(lambda.calls.ListFunctionsCommand).toBeGreaterThan(0);
    expect(tagging.calls.GetResourcesCommand).toBeGreaterThan(0);
  });

  it("backs off when the Tagging API throttles, and still answers", async () => {
    const prefix = uniqueName("fun-bulk-throttled");
    const names = Array.from({ length: BULK_LOOKUP_THRESHOLD + 1 }, (_, index) => `${prefix}-${index}`);
    for (const name of names) await createFunction({ name, runtime: "python3.12", tags: { name } });
    // Injected fault: moto never throttles; the client refuses its first two GetResources calls
    // as the Tagging API does over its rate (ThrottledException), before they are sent.
    const tagging = countingClient(
      new ResourceGroupsTaggingAPIClient({ ...awsClientConfig(), maxAttempts: 1 }),
      {
        name: "GetResourcesCommand",
        times: 2,
      },
    );
    const waits: number[] = [];

    const bulk = await getFunctionFactsInBulk(
      { lambda: new LambdaClient(awsClientConfig()), tagging: tagging.client },
      names,
      new FunctionFactsCache(),
      { sleep: async (ms) => void waits.push(ms), onThrottle: () => undefined },
    );

    expect(waits).toHaveLength(2);
    for (const name of names)
      expect(bulk.get(name)).toEqual({ found: true, tags: { name }, runtime: "python3.12" });
  });
});
