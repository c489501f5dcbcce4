import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  DescribeLogGroupsCommand,
  DescribeSubscriptionFiltersCommand,
  ListTagsForResourceCommand,
  PutRetentionPolicyCommand,
  PutSubscriptionFilterCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  applyPlan,
  describePlan,
  planLink,
  planUnlink,
  type SubscriptionTarget,
  selectionIncludes,
  selectLogGroups,
} from "../../functions/core/cloudwatch/log-group-registry.ts";
import { InputError } from "../../functions/core/errors.ts";
import { awsClientConfig, createFunction, TEST_ACCOUNT, uniqueName } from "../helpers/aws.ts";

let logs: CloudWatchLogsClient;

async function createLogGroup(name: string, tags?: Record<string, string>) {
  await logs.send(new CreateLogGroupCommand({ logGroupName: name, ...(tags ? { tags } : {}) }));
}

async function filtersOf(logGroupName: string) {
  const answer = await logs.send(new DescribeSubscriptionFiltersCommand({ logGroupName }));
  return answer.subscriptionFilters ?? [];
}

async function givenShipper(): Promise<SubscriptionTarget> {
  return {
    destinationArn: await createFunction({ name: uniqueName("shipper") }),
    filterName: "loki-shipper",
  };
}

beforeAll(() => {
  logs = new CloudWatchLogsClient(awsClientConfig());
});

describe("selectLogGroups", () => {
  it("selects by prefix and narrows by tag selector", async () => {
    // Given three groups under one prefix, two of them Python
    const prefix = `/aws/lambda/${uniqueName("sel")}`;
    await createLogGroup(`${prefix}-a`, { runtime: "python", owner: "team-a" });
    await createLogGroup(`${prefix}-b`, { runtime: "nodejs", owner: "team-a" });
    await createLogGroup(`${prefix}-c`, { runtime: "python", owner: "team-b" });

    // When selecting the Python groups of team-a's regex
    const selected = await selectLogGroups(logs, {
      prefixes: [prefix],
      tagSelector: 'runtime="python", owner=~"team-.*"',
    });

    // Then both Python groups are found, with their tags, and the Node.js one is not
    expect(selected.map((group) => group.name)).toEqual([`${prefix}-a`, `${prefix}-c`]);
    expect(selected[0]?.tags).toEqual({ runtime: "python", owner: "team-a" });
  });

  it("refuses an empty selection instead of selecting every log group", async () => {
    // Given no names, no prefixes and no tag selector
    // When selecting / Then an InputError says how to select
    await expect(selectLogGroups(logs, {})).rejects.toThrow(InputError);
    await expect(selectLogGroups(logs, { names: [] })).rejects.toThrow(
      "No log groups selected: give log group names, name prefixes or a tag selector",
    );
  });

  it("matches a group created later against a selection without calling AWS", () => {
    // Given a selection by prefix and tags
    const selection = { prefixes: ["/aws/lambda/fun-"], tagSelector: "runtime=python" };

    // When / Then only a group with both the prefix and the tag belongs to it
    expect(
      selectionIncludes(selection, { name: "/aws/lambda/fun-python", tags: { runtime: "python" } }),
    ).toBe(true);
    expect(selectionIncludes(selection, { name: "/aws/lambda/fun-node", tags: { runtime: "nodejs" } })).toBe(
      false,
    );
    expect(selectionIncludes(selection, { name: "/aws/lambda/other", tags: { runtime: "python" } })).toBe(
      false,
    );
  });
});

describe("planLink and applyPlan", () => {
  it("plans without changing anything, then subscribes exactly the planned groups", async () => {
    // Given two log groups and the shipper function
    const target = await givenShipper();
    const prefix = `/aws/lambda/${uniqueName("link")}`;
    await createLogGroup(`${prefix}-one`);
    await createLogGroup(`${prefix}-two`);

    // When planning (dry run)
    const plan = await planLink(logs, { prefixes: [prefix] }, target);

    // Then the plan lists both as "subscribe" and nothing is subscribed yet
    expect(plan.changes.map((change) => [change.logGroup, change.action])).toEqual([
      [`${prefix}-one`, "subscribe"],
      [`${prefix}-two`, "subscribe"],
    ]);
    expect(describePlan(plan)[0]).toContain(
      `subscribe   ${prefix}-one: add subscription filter loki-shipper`,
    );
    expect(await filtersOf(`${prefix}-one`)).toEqual([]);

    // When applying it
    const outcome = await applyPlan(logs, plan);

    // Then both groups deliver to the shipper with an empty pattern
    expect(outcome.failed).toEqual([]);
    expect(outcome.applied).toHaveLength(2);
    for (const name of [`${prefix}-one`, `${prefix}-two`]) {
      expect(await filtersOf(name)).toEqual([
        expect.objectContaining({
          filterName: "loki-shipper",
          destinationArn: target.destinationArn,
          filterPattern: "",
        }),
      ]);
    }
  });

  it("reports an already linked group as unchanged (running link twice is safe)", async () => {
    // Given a group already linked
    const target = await givenShipper();
    const name = `/aws/lambda/${uniqueName("twice")}`;
    await createLogGroup(name);
    await applyPlan(logs, await planLink(logs, { names: [name] }, target));

    // When planning again
    const plan = await planLink(logs, { names: [name] }, target);

    // Then nothing is to be done
    expect(plan.changes).toEqual([expect.objectContaining({ logGroup: name, action: "unchanged" })]);
    expect((await applyPlan(logs, plan)).applied).toEqual([]);
  });

  it("never subscribes an excluded group such as the shipper's own", async () => {
    // Given the shipper's own log group matched by the prefix
    const target = await givenShipper();
    const prefix = `/aws/lambda/${uniqueName("own")}`;
    await createLogGroup(`${prefix}-shipper`);
    await createLogGroup(`${prefix}-app`);

    // When linking the prefix with the shipper's group excluded
    const plan = await planLink(logs, { prefixes: [prefix] }, target, {
      excludedLogGroups: [`${prefix}-shipper`],
    });
    await applyPlan(logs, plan);

    // Then the shipper's group is skipped with the reason, and left without a filter
    expect(plan.changes.find((change) => change.logGroup === `${prefix}-shipper`)).toMatchObject({
      action: "skip",
      reason: expect.stringContaining("loop"),
    });
    expect(await filtersOf(`${prefix}-shipper`)).toEqual([]);
    expect(await filtersOf(`${prefix}-app`)).toHaveLength(1);
  });

  it("skips the destination function's own default log group even when nobody excluded it", async () => {
    // Given the shipper's default log group matched by a prefix
    const shipperName = uniqueName("selfship");
    const target = {
      destinationArn: await createFunction({ name: shipperName }),
      filterName: "loki-shipper",
    };
    await createLogGroup(`/aws/lambda/${shipperName}`);

    // When linking by that prefix without exclusions
    const plan = await planLink(logs, { prefixes: [`/aws/lambda/${shipperName}`] }, target);

    // Then it is skipped
    expect(plan.changes).toEqual([
      expect.objectContaining({ action: "skip", reason: expect.stringContaining("loop") }),
    ]);
  });

  it("skips a group that already has two other subscription filters", async () => {
    // Given a group with two filters of other tools (CloudWatch Logs allows two)
    const target = await givenShipper();
    const name = `/aws/lambda/${uniqueName("full")}`;
    await createLogGroup(name);
    for (const filterName of ["tool-a", "tool-b"]) {
      await logs.send(
        new PutSubscriptionFilterCommand({
          logGroupName: name,
          filterName,
          filterPattern: "",
          destinationArn: await createFunction({ name: uniqueName(filterName) }),
        }),
      );
    }

    // When planning a link
    const plan = await planLink(logs, { names: [name] }, target);

    // Then it is skipped with a reason that says what to do, and the other filters stay
    expect(plan.changes).toEqual([
      expect.objectContaining({ action: "skip", reason: expect.stringContaining("remove one first") }),
    ]);
    await applyPlan(logs, plan);
    expect((await filtersOf(name)).map((filter) => filter.filterName).sort()).toEqual(["tool-a", "tool-b"]);
  });

  it("reports a named group that does not exist", async () => {
    // Given a name no group has
    const target = await givenShipper();
    const name = `/aws/lambda/${uniqueName("missing")}`;

    // When planning / Then the plan says it was not found
    const plan = await planLink(logs, { names: [name] }, target);
    expect(plan.changes).toEqual([{ logGroup: name, action: "skip", reason: "log group not found" }]);
  });

  it("sets only the tags asked for and leaves retention alone", async () => {
    // Given a group with a retention and a tag
    const target = await givenShipper();
    const name = `/aws/lambda/${uniqueName("tags")}`;
    await createLogGroup(name, { owner: "team-a" });
    await logs.send(new PutRetentionPolicyCommand({ logGroupName: name, retentionInDays: 90 }));

    // When linking it with tags, one of which it already has
    const plan = await planLink(logs, { names: [name] }, target, {
      tags: { owner: "team-a", runtime: "python" },
    });
    await applyPlan(logs, plan);

    // Then only the missing tag is planned and set, and the retention is unchanged
    expect(plan.changes[0]?.tagsToSet).toEqual({ runtime: "python" });
    const arn = `arn:aws:logs:eu-central-1:${TEST_ACCOUNT}:log-group:${name}`;
    const tags = await logs.send(new ListTagsForResourceCommand({ resourceArn: arn }));
    expect(tags.tags).toEqual({ owner: "team-a", runtime: "python" });
    const described = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: name }));
    expect(described.logGroups?.[0]?.retentionInDays).toBe(90);
  });
});

describe("planUnlink", () => {
  it("removes the shipper's filter and keeps the filters of other tools", async () => {
    // Given a group linked to the shipper and to another tool
    const target = await givenShipper();
    const name = `/aws/lambda/${uniqueName("unlink")}`;
    await createLogGroup(name);
    await applyPlan(logs, await planLink(logs, { names: [name] }, target));
    await logs.send(
      new PutSubscriptionFilterCommand({
        logGroupName: name,
        filterName: "other-tool",
        filterPattern: "",
        destinationArn: await createFunction({ name: uniqueName("other") }),
      }),
    );

    // When unlinking
    const plan = await planUnlink(logs, { names: [name] }, target);
    const outcome = await applyPlan(logs, plan);

    // Then only the shipper's filter is gone
    expect(plan.changes).toEqual([
      expect.objectContaining({ action: "unsubscribe", filterNames: ["loki-shipper"] }),
    ]);
    expect(outcome.failed).toEqual([]);
    expect((await filtersOf(name)).map((filter) => filter.filterName)).toEqual(["other-tool"]);
  });

  it("reports a group that is not linked as unchanged", async () => {
    // Given a group without filters
    const target = await givenShipper();
    const name = `/aws/lambda/${uniqueName("notlinked")}`;
    await createLogGroup(name);

    // When planning an unlink / Then nothing is to be done
    const plan = await planUnlink(logs, { names: [name] }, target);
    expect(plan.changes).toEqual([
      { logGroup: name, action: "unchanged", reason: "not subscribed to the shipper" },
    ]);
  });
});
