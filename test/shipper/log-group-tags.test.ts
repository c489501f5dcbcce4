import { CloudWatchLogsClient, TagResourceCommand } from "@aws-sdk/client-cloudwatch-logs";
import { describe, expect, it } from "vitest";
import {
  getLogGroupTags,
  LogGroupTagCache,
  logGroupArn,
} from "../../functions/core/labels/log-group-tags.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION } from "../helpers/aws.ts";
import { createTaggedLogGroup } from "../helpers/log-groups.ts";

const logs = new CloudWatchLogsClient(awsClientConfig());
const context = { accountId: TEST_ACCOUNT, region: TEST_REGION };

describe("logGroupArn", () => {
  it("drops the trailing :* and builds ARNs from names", () => {
    expect(logGroupArn("arn:aws:logs:eu-central-1:1:log-group:/a:*", context)).toBe(
      "arn:aws:logs:eu-central-1:1:log-group:/a",
    );
    expect(logGroupArn("/aws/lambda/x", context)).toBe(
      `arn:aws:logs:${TEST_REGION}:${TEST_ACCOUNT}:log-group:/aws/lambda/x`,
    );
  });
});

describe("getLogGroupTags", () => {
  it("reads the tags once per TTL", async () => {
    let clock = 0;
    const cache = new LogGroupTagCache({ ttlMs: 1000, negativeTtlMs: 100 }, () => clock);
    const name = await createTaggedLogGroup("tags", { runtime: "java" });

    expect(await getLogGroupTags(logs, name, context, cache)).toEqual({
      tags: { runtime: "java" },
      found: true,
      cached: false,
    });
    await logs.send(
      new TagResourceCommand({ resourceArn: logGroupArn(name, context), tags: { owner: "me" } }),
    );
    expect(await getLogGroupTags(logs, name, context, cache)).toMatchObject({
      tags: { runtime: "java" },
      cached: true,
    });
    clock = 1001;
    expect(await getLogGroupTags(logs, name, context, cache)).toMatchObject({
      tags: { runtime: "java", owner: "me" },
      cached: false,
    });
  });

  it("remembers a missing log group for the negative TTL", async () => {
    let clock = 0;
    let calls = 0;
    const cache = new LogGroupTagCache({ ttlMs: 1000, negativeTtlMs: 100 }, () => clock);
    // Client double: moto answers ListTagsForResource for an unknown group with no tags instead of
    // AWS's ResourceNotFoundException, so the error is produced here.
    const missing = {
      send: async () => {
        calls += 1;
        throw Object.assign(new Error("The specified log group does not exist."), {
          name: "ResourceNotFoundException",
        });
      },
    } as unknown as CloudWatchLogsClient;

    expect(await getLogGroupTags(missing, "/no/such/group", context, cache)).toEqual({
      tags: {},
      found: false,
      cached: false,
    });
    expect(await getLogGroupTags(missing, "/no/such/group", context, cache)).toMatchObject({
      found: false,
      cached: true,
    });
    expect(calls).toBe(1);
    clock = 101;
    await getLogGroupTags(missing, "/no/such/group", context, cache);
    expect(calls).toBe(2);
  });
});
