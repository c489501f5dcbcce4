import { Logger } from "@aws-lambda-powertools/logger";
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  DescribeSubscriptionFiltersCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import type { CloudFormationCustomResourceEvent } from "aws-lambda";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../functions/core/errors.ts";
import {
  parseRegistrarConfig,
  type RegistrarDeps,
  type RegistrarEvent,
  registerLogGroups,
} from "../../functions/register-log-groups.ts";
import { awsClientConfig, createFunction, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";

let logs: CloudWatchLogsClient;
const logger = new Logger({ logLevel: "SILENT" });

beforeAll(() => {
  logs = new CloudWatchLogsClient(awsClientConfig());
});

async function givenRegistrar(env: Record<string, string>): Promise<RegistrarDeps> {
  const destinationArn = await createFunction({ name: uniqueName("shipper") });
  return { logs, logger, config: parseRegistrarConfig({ DESTINATION_ARN: destinationArn, ...env }) };
}

async function filterNames(logGroupName: string): Promise<string[]> {
  const answer = await logs.send(new DescribeSubscriptionFiltersCommand({ logGroupName }));
  return (answer.subscriptionFilters ?? []).map((filter) => filter.filterName ?? "");
}

function deployEvent(
  requestType: "Create" | "Update" | "Delete",
  selections: unknown[],
): CloudFormationCustomResourceEvent {
  const common = {
    ServiceToken: "arn:aws:lambda:eu-central-1:123456789012:function:provider",
    ResponseURL: "https://cloudformation-custom-resource-response.invalid/",
    StackId: "arn:aws:cloudformation:eu-central-1:123456789012:stack/test/1",
    RequestId: "request-1",
    LogicalResourceId: "ExistingLogGroups",
    ResourceType: "Custom::LokiShipperRegistration",
    ResourceProperties: { ServiceToken: "token", Selections: JSON.stringify(selections) },
  };
  if (requestType === "Create") return { ...common, RequestType: "Create" };
  if (requestType === "Update") {
    return {
      ...common,
      RequestType: "Update",
      PhysicalResourceId: "id",
      OldResourceProperties: { ServiceToken: "token" },
    };
  }
  return { ...common, RequestType: "Delete", PhysicalResourceId: "id" };
}

function cloudTrailEvent(eventName: string, requestParameters: Record<string, unknown>): RegistrarEvent {
  return {
    version: "0",
    id: uniqueName("event"),
    "detail-type": "AWS API Call via CloudTrail",
    source: "aws.logs",
    account: TEST_ACCOUNT,
    time: new Date().toISOString(),
    region: TEST_REGION,
    resources: [],
    detail: { eventName, requestParameters },
  };
}

describe("registrar at deploy time (custom resource)", () => {
  it("subscribes the selected groups on Create, never the excluded ones, and unsubscribes them on Delete", async () => {
    // Given three groups under a prefix, one of them the shipper's own
    const prefix = `/aws/lambda/${uniqueName("deploy")}`;
    for (const suffix of ["a", "b", "shipper"]) {
      await logs.send(new CreateLogGroupCommand({ logGroupName: `${prefix}-${suffix}` }));
    }
    const deps = await givenRegistrar({ EXCLUDED_LOG_GROUPS: JSON.stringify([`${prefix}-shipper`]) });

    // When CloudFormation creates the registration
    const created = await registerLogGroups(deployEvent("Create", [{ prefixes: [prefix] }]), deps);

    // Then the two application groups are subscribed and the shipper's own is not
    expect(created).toEqual({
      PhysicalResourceId: "loki-shipper-registration-loki-shipper",
      Data: { Changed: "2" },
    });
    expect(await filterNames(`${prefix}-a`)).toEqual(["loki-shipper"]);
    expect(await filterNames(`${prefix}-b`)).toEqual(["loki-shipper"]);
    expect(await filterNames(`${prefix}-shipper`)).toEqual([]);

    // When the stack is deleted
    await registerLogGroups(deployEvent("Delete", [{ prefixes: [prefix] }]), deps);

    // Then the subscriptions are gone
    expect(await filterNames(`${prefix}-a`)).toEqual([]);
    expect(await filterNames(`${prefix}-b`)).toEqual([]);
  });

  it("subscribes by tag selector on Update", async () => {
    // Given a Python and a Node.js group
    const prefix = `/aws/lambda/${uniqueName("tagged")}`;
    await logs.send(new CreateLogGroupCommand({ logGroupName: `${prefix}-py`, tags: { runtime: "python" } }));
    await logs.send(new CreateLogGroupCommand({ logGroupName: `${prefix}-js`, tags: { runtime: "nodejs" } }));
    const deps = await givenRegistrar({});

    // When the registration is updated to select Python groups under the prefix
    await registerLogGroups(
      deployEvent("Update", [{ prefixes: [prefix], tagSelector: 'runtime="python"' }]),
      deps,
    );

    // Then only the Python group is subscribed
    expect(await filterNames(`${prefix}-py`)).toEqual(["loki-shipper"]);
    expect(await filterNames(`${prefix}-js`)).toEqual([]);
  });
});

describe("registrar for log groups created later (CloudTrail through EventBridge)", () => {
  it("subscribes a new group that matches a selection and leaves others alone", async () => {
    // Given a registrar configured for a prefix, and two new groups, one under it
    const prefix = `/aws/lambda/${uniqueName("new")}`;
    const other = `/aws/lambda/${uniqueName("elsewhere")}`;
    await logs.send(new CreateLogGroupCommand({ logGroupName: `${prefix}-fn` }));
    await logs.send(new CreateLogGroupCommand({ logGroupName: other }));
    const deps = await givenRegistrar({ REGISTRATION_SELECTIONS: JSON.stringify([{ prefixes: [prefix] }]) });

    // When their CreateLogGroup events arrive
    await registerLogGroups(cloudTrailEvent("CreateLogGroup", { logGroupName: `${prefix}-fn` }), deps);
    await registerLogGroups(cloudTrailEvent("CreateLogGroup", { logGroupName: other }), deps);

    // Then only the matching group is subscribed
    expect(await filterNames(`${prefix}-fn`)).toEqual(["loki-shipper"]);
    expect(await filterNames(other)).toEqual([]);
  });

  it("subscribes a group once it gets the selected tags (TagResource names it by ARN)", async () => {
    // Given a registrar selecting system_under_test=demo, and an untagged group
    const name = `/aws/lambda/${uniqueName("later")}`;
    await logs.send(new CreateLogGroupCommand({ logGroupName: name }));
    const deps = await givenRegistrar({
      REGISTRATION_SELECTIONS: JSON.stringify([{ tagSelector: "system_under_test=demo" }]),
    });
    const arn = `arn:aws:logs:${TEST_REGION}:${TEST_ACCOUNT}:log-group:${name}`;

    // When the group is created without tags, nothing happens
    await registerLogGroups(cloudTrailEvent("CreateLogGroup", { logGroupName: name }), deps);
    expect(await filterNames(name)).toEqual([]);

    // When it is tagged and the TagResource event arrives
    await logs.send(new TagResourceCommand({ resourceArn: arn, tags: { system_under_test: "demo" } }));
    await registerLogGroups(cloudTrailEvent("TagResource", { resourceArn: arn, tags: {} }), deps);

    // Then it is subscribed
    expect(await filterNames(name)).toEqual(["loki-shipper"]);
  });

  it("never subscribes an excluded group even when it matches", async () => {
    // Given the registrar's own log group under a selected prefix
    const prefix = `/aws/lambda/${uniqueName("self")}`;
    await logs.send(new CreateLogGroupCommand({ logGroupName: `${prefix}-registrar` }));
    const deps = await givenRegistrar({
      REGISTRATION_SELECTIONS: JSON.stringify([{ prefixes: [prefix] }]),
      EXCLUDED_LOG_GROUPS: JSON.stringify([`${prefix}-registrar`]),
    });

    // When its CreateLogGroup event arrives / Then it stays unsubscribed
    await registerLogGroups(cloudTrailEvent("CreateLogGroup", { logGroupName: `${prefix}-registrar` }), deps);
    expect(await filterNames(`${prefix}-registrar`)).toEqual([]);
  });
});

function captureError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

describe("parseRegistrarConfig", () => {
  it("names each bad variable and the value received", () => {
    // Given a destination that is not an ARN and selections that are not JSON
    const env = { DESTINATION_ARN: "shipper", REGISTRATION_SELECTIONS: "[{prefixes:" };

    // When / Then one ConfigError lists both, one line each
    const problems = [
      "DESTINATION_ARN: expected the shipper Lambda ARN",
      "REGISTRATION_SELECTIONS: expected a JSON array of selections, got [{prefixes:",
    ];
    expect(() => parseRegistrarConfig(env)).toThrow(new ConfigError(problems));
    expect(() => parseRegistrarConfig(env)).toThrow(`Invalid configuration:\n- ${problems.join("\n- ")}`);
    expect(captureError(() => parseRegistrarConfig(env))).toMatchObject({ problems });
  });

  it("refuses a selection with an unknown field", () => {
    // Given a typo in a selection field
    const env = {
      DESTINATION_ARN: "arn:aws:lambda:eu-central-1:123456789012:function:shipper",
      REGISTRATION_SELECTIONS: JSON.stringify([{ prefix: "/aws/lambda/" }]),
    };

    // When / Then the unknown key is reported rather than ignored
    expect(() => parseRegistrarConfig(env)).toThrow(/REGISTRATION_SELECTIONS\.0: Unrecognized key: "prefix"/);
  });
});
