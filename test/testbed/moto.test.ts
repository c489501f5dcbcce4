import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  DescribeLogGroupsCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { describe, expect, it } from "vitest";
import { awsClientConfig, uniqueName } from "../helpers/aws.ts";

describe("moto test bed", () => {
  it("serves CloudWatch Logs to the real SDK client over HTTP on 127.0.0.1", async () => {
    const config = awsClientConfig();
    expect(new URL(config.endpoint).hostname).toBe("127.0.0.1");
    const logs = new CloudWatchLogsClient(config);
    const logGroupName = uniqueName("/test/testbed");
    await logs.send(new CreateLogGroupCommand({ logGroupName }));
    const found = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: logGroupName }));
    expect(found.logGroups?.map((group) => group.logGroupName)).toEqual([logGroupName]);
  });
});
