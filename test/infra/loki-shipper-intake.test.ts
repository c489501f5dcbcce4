import type { Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { LokiShipper } from "../../infra/constructs/loki-shipper.ts";
import {
  LokiShipperIntake,
  type LokiShipperIntakeProps,
} from "../../infra/constructs/loki-shipper-intake.ts";
import {
  expectRoleStatements,
  logicalIdOf,
  objectArn,
  partitionArn,
  statementsOfRole,
  testApp,
  testStack,
  unacknowledgedNagFindings,
} from "./cdk-helpers.ts";

const SOURCE_ACCOUNTS = ["111111111111", "222222222222"];

function givenIntake(props: Partial<Omit<LokiShipperIntakeProps, "pipeline">> = {}) {
  const stack = testStack(testApp(), "Central");
  const pipeline = new LokiShipper(stack, "Pipeline", { lokiUrl: "https://loki.example.com" });
  const intake = new LokiShipperIntake(stack, "Intake", {
    pipeline,
    senders: { accountIds: SOURCE_ACCOUNTS },
    regions: ["eu-central-1", "us-east-1"],
    ...props,
  });
  return { stack, pipeline, intake, template: Template.fromStack(stack) };
}

function destinationPolicyOf(stack: Stack): Record<string, unknown> {
  const [destination] = Object.values(Template.fromStack(stack).findResources("AWS::Logs::Destination"));
  // The policy is a JSON string with the partition as the only reference.
  const policy = stack.resolve(destination?.Properties.DestinationPolicy) as {
    "Fn::Join": [string, unknown[]];
  };
  const text = policy["Fn::Join"][1].map((part) => (typeof part === "string" ? part : "aws")).join("");
  return JSON.parse(text);
}

describe("LokiShipperIntake for listed accounts", () => {
  let stack: Stack;
  let pipeline: LokiShipper;
  let intake: LokiShipperIntake;
  let template: Template;

  beforeAll(() => {
    // Given the pipeline and an intake for two accounts in two regions (synthesised once)
    ({ stack, pipeline, intake, template } = givenIntake());
  });

  it("keeps the events in an on-demand stream encrypted with its own rotated key", () => {
    template.hasResourceProperties("AWS::Kinesis::Stream", {
      Name: "Central-intake",
      StreamModeDetails: { StreamMode: "ON_DEMAND" },
      StreamEncryption: {
        EncryptionType: "KMS",
        KeyId: { "Fn::GetAtt": [logicalIdOf(intake.streamKey), "Arn"] },
      },
    });
    template.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
  });

  it("feeds the shipper from the stream, reporting failed items and keeping given-up batches in the bucket", () => {
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: logicalIdOf(pipeline.shipper.function) },
      EventSourceArn: { "Fn::GetAtt": [logicalIdOf(intake.stream), "Arn"] },
      StartingPosition: "TRIM_HORIZON",
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      BisectBatchOnFunctionError: false,
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 12 * 3600,
      ParallelizationFactor: 2,
      DestinationConfig: {
        OnFailure: { Destination: { "Fn::GetAtt": [logicalIdOf(pipeline.bucket.bucket), "Arn"] } },
      },
    });
  });

  it("lets the shipper read only that stream, decrypt with its key, and write given-up batches under aws/lambda/", () => {
    const shipperRoleId = logicalIdOf(pipeline.shipper.function.role as never);
    const streamArn = { "Fn::GetAtt": [logicalIdOf(intake.stream), "Arn"] };
    expectRoleStatements(template, shipperRoleId, [
      { Action: Match.arrayWith(["kinesis:GetRecords", "kinesis:GetShardIterator"]), Resource: streamArn },
      { Action: "kms:Decrypt", Resource: { "Fn::GetAtt": [logicalIdOf(intake.streamKey), "Arn"] } },
      {
        Sid: "KeepFailedBatches",
        Action: "s3:PutObject",
        Resource: objectArn(logicalIdOf(pipeline.bucket.bucket), "/aws/lambda/*"),
      },
      {
        Sid: "ListFailedBatches",
        Action: "s3:ListBucket",
        Resource: { "Fn::GetAtt": [logicalIdOf(pipeline.bucket.bucket), "Arn"] },
      },
    ]);
    const kinesisResources = statementsOfRole(template, shipperRoleId)
      .filter((statement) => JSON.stringify(statement.Action).includes("kinesis:"))
      .map((statement) => statement.Resource);
    expect(kinesisResources).toEqual([streamArn]);
  });

  it("lets CloudWatch Logs of the senders and of this account assume the writer role, which may only put records", () => {
    const writerRoleId = logicalIdOf(intake.writerRole);
    template.hasResourceProperties("AWS::IAM::Role", {
      RoleName: "Central-intake-writer",
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: "sts:AssumeRole",
            Effect: "Allow",
            Principal: { Service: "logs.amazonaws.com" },
            Condition: {
              StringLike: {
                "aws:SourceArn": [
                  partitionArn("logs:*:111111111111:*"),
                  partitionArn("logs:*:222222222222:*"),
                  partitionArn("logs:*:123456789012:*"),
                ],
              },
            },
          },
        ],
      },
    });
    expect(statementsOfRole(template, writerRoleId)).toEqual([
      {
        Sid: "PutIntakeRecords",
        Effect: "Allow",
        Action: "kinesis:PutRecord",
        Resource: { "Fn::GetAtt": [logicalIdOf(intake.stream), "Arn"] },
      },
      {
        Effect: "Allow",
        Action: "kms:GenerateDataKey",
        Resource: { "Fn::GetAtt": [logicalIdOf(intake.streamKey), "Arn"] },
      },
    ]);
  });

  it("creates one destination stack per region, pointing at the stream and role by literal ARNs", () => {
    expect(intake.destinationStacks.map((destinationStack) => destinationStack.region)).toEqual([
      "eu-central-1",
      "us-east-1",
    ]);
    const usEast = intake.destinationStacks[1] as Stack;
    expect(usEast.dependencies).toContain(stack);
    Template.fromStack(usEast).hasResourceProperties("AWS::Logs::Destination", {
      DestinationName: "loki-shipper",
      TargetArn: partitionArn("kinesis:eu-central-1:123456789012:stream/Central-intake"),
      RoleArn: partitionArn("iam::123456789012:role/Central-intake-writer"),
    });
  });

  it("allows only the listed accounts to subscribe, to that destination only", () => {
    expect(destinationPolicyOf(intake.destinationStacks[1] as Stack)).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "LokiShipperSenders",
          Effect: "Allow",
          Principal: { AWS: SOURCE_ACCOUNTS },
          Action: ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"],
          Resource: "arn:aws:logs:us-east-1:123456789012:destination:loki-shipper",
        },
      ],
    });
  });

  it("lets the shipper and the backfill functions assume the reader role of the listed accounts only", () => {
    const readerRoles = SOURCE_ACCOUNTS.map((account) =>
      partitionArn(`iam::${account}:role/loki-shipper-reader`),
    );
    const { workflows } = pipeline;
    for (const fn of [
      pipeline.shipper,
      workflows.planBackfill,
      workflows.exportSlice,
      workflows.replayChunks,
    ]) {
      expectRoleStatements(template, logicalIdOf(fn.function.role as never), [
        { Sid: "AssumeSourceReader", Action: "sts:AssumeRole", Resource: readerRoles },
      ]);
      const resource = template.toJSON().Resources[logicalIdOf(fn.function)];
      expect(resource.Properties.Environment.Variables.SOURCE_READER_ROLE_NAME).toBe("loki-shipper-reader");
    }
    for (const fn of [workflows.planReplay, workflows.finishRun]) {
      const actions = statementsOfRole(template, logicalIdOf(fn.function.role as never)).flatMap(
        (statement) => statement.Action,
      );
      expect(actions).not.toContain("sts:AssumeRole");
    }
    expect(intake.readerTrustedRoles).toHaveLength(4);
  });

  it("alarms when the shipper falls an hour behind and when a given-up batch could not be kept", () => {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "IteratorAge",
      Statistic: "Maximum",
      Threshold: 3_600_000,
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "DestinationDeliveryFailures",
      Threshold: 1,
    });
  });

  it("has no cdk-nag AwsSolutions finding without an acknowledged reason", () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
    for (const destinationStack of intake.destinationStacks)
      expect(unacknowledgedNagFindings(destinationStack)).toEqual([]);
  });
});

describe("LokiShipperIntake for an organization", () => {
  it("allows the organization's accounts by aws:PrincipalOrgID and reader roles in any account", () => {
    // Given an intake for a whole organization
    const { stack, pipeline, intake, template } = givenIntake({
      senders: { organizationId: "o-a1b2c3d4e5" },
      readerRoleName: "central-logs-reader",
    });

    // Then the destination names the organization, not accounts
    expect(destinationPolicyOf(intake.destinationStacks[0] as Stack)).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "LokiShipperSenders",
          Effect: "Allow",
          Principal: "*",
          Action: ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"],
          Resource: "arn:aws:logs:eu-central-1:123456789012:destination:loki-shipper",
          Condition: { StringEquals: { "aws:PrincipalOrgID": ["o-a1b2c3d4e5"] } },
        },
      ],
    });
    // And the functions may assume that reader role name in any account, and nothing else by STS
    expectRoleStatements(template, logicalIdOf(pipeline.shipper.function.role as never), [
      {
        Sid: "AssumeSourceReader",
        Action: "sts:AssumeRole",
        Resource: partitionArn("iam::*:role/central-logs-reader"),
      },
    ]);
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });

  it("reads no source account with readerRoleName false", () => {
    const { pipeline, template } = givenIntake({ readerRoleName: false });
    const actions = statementsOfRole(template, logicalIdOf(pipeline.shipper.function.role as never)).flatMap(
      (statement) => statement.Action,
    );
    expect(actions).not.toContain("sts:AssumeRole");
    const shipper = template.toJSON().Resources[logicalIdOf(pipeline.shipper.function)];
    expect(shipper.Properties.Environment.Variables.SOURCE_READER_ROLE_NAME).toBeUndefined();
  });
});

describe("LokiShipperIntake validation", () => {
  it.each([
    [
      { senders: {} },
      "LokiShipperIntake: senders needs accountIds or organizationId, exactly one of the two. Received: neither",
    ],
    [
      { senders: { accountIds: ["111111111111", "1234"] } },
      'LokiShipperIntake: senders.accountIds must list 12-digit AWS account ids. Received: ["1234"]',
    ],
    [
      { senders: { organizationId: "r-abcd" } },
      'LokiShipperIntake: senders.organizationId must be an AWS Organizations id such as o-a1b2c3d4e5. Received: "r-abcd"',
    ],
    [
      { regions: ["eu-central-1", "Frankfurt"] },
      'LokiShipperIntake: regions must list AWS regions such as eu-central-1. Received: ["Frankfurt"]',
    ],
  ])("refuses %j with a message naming the bad value", (props, message) => {
    expect(() => givenIntake(props)).toThrow(message);
  });
});
