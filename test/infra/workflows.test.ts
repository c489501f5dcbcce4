import { readFileSync } from "node:fs";
import type { App, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { beforeAll, describe, expect, it } from "vitest";
import { ShipperBucket } from "../../infra/constructs/shipper-bucket.ts";
import { Workflows } from "../../infra/constructs/workflows.ts";
import {
  expectRoleStatements,
  logicalIdOf,
  objectArn,
  partitionArn,
  statementsOfRole,
  testStack,
  unacknowledgedNagFindings,
} from "./cdk-helpers.ts";

const PLACEHOLDER = /\$\{([A-Za-z0-9_]+)\}/g;

function placeholdersIn(file: string): string[] {
  const definition = readFileSync(new URL(`../../statemachines/${file}`, import.meta.url), "utf8");
  return [...new Set([...definition.matchAll(PLACEHOLDER)].map((match) => match[1] as string))].sort();
}

describe("Workflows", () => {
  let stack: Stack;
  let workflows: Workflows;
  let template: Template;
  let bucketId: string;
  let assemblyDir: string;
  const roleOf = (task: keyof Workflows) =>
    logicalIdOf((workflows[task] as Workflows["planBackfill"]).function.role as never);
  const arnOf = (task: keyof Workflows) => ({
    "Fn::GetAtt": [logicalIdOf((workflows[task] as Workflows["planBackfill"]).function), "Arn"],
  });

  beforeAll(() => {
    // Given the workflows over a bucket (synthesised once for this file)
    stack = testStack();
    const bucket = new ShipperBucket(stack, "Storage").bucket;
    workflows = new Workflows(stack, "Workflows", {
      bucket,
      lokiEnvironment: { BUCKET_NAME: bucket.bucketName, LOKI_URL: "https://loki.example.com" },
      namePrefix: "loki-shipper",
    });
    template = Template.fromStack(stack);
    assemblyDir = (stack.node.root as App).synth().directory;
    bucketId = logicalIdOf(bucket);
  });

  it("gives every placeholder of each ASL file a substitution, and offers nothing else but BucketName", () => {
    const machines = template.findResources("AWS::StepFunctions::StateMachine");
    const byName = Object.fromEntries(
      Object.values(machines).map((machine) => [machine.Properties.StateMachineName, machine.Properties]),
    );
    for (const [name, file] of [
      ["loki-shipper-backfill", "backfill.asl.json"],
      ["loki-shipper-replay", "replay.asl.json"],
    ] as const) {
      const properties = byName[name];
      // BucketName is offered to both files by contract, whether or not a file uses it.
      const offered = Object.keys(properties.DefinitionSubstitutions).sort();
      expect(offered).toEqual(expect.arrayContaining(placeholdersIn(file)));
      expect(offered.filter((key) => !placeholdersIn(file).includes(key) && key !== "BucketName")).toEqual(
        [],
      );
      // The deployed definition is the staged asset; rendering it as CloudFormation will leaves no ${...}.
      const staged = readFileSync(`${assemblyDir}/asset.${properties.DefinitionS3Location.Key}`, "utf8");
      expect(JSON.parse(staged)).toEqual(
        JSON.parse(readFileSync(new URL(`../../statemachines/${file}`, import.meta.url), "utf8")),
      );
      const rendered = staged.replace(PLACEHOLDER, (whole, key: string) =>
        key in properties.DefinitionSubstitutions ? "resolved" : whole,
      );
      expect(rendered).not.toMatch(/\$\{/);
      expect(() => JSON.parse(rendered)).not.toThrow();
    }
  });

  it("substitutes the exact function ARNs, the bucket and the backfill's own ARN", () => {
    template.hasResourceProperties("AWS::StepFunctions::StateMachine", {
      StateMachineName: "loki-shipper-backfill",
      DefinitionSubstitutions: {
        PlanBackfillFunctionArn: arnOf("planBackfill"),
        ExportSliceFunctionArn: arnOf("exportSlice"),
        ReplayChunksFunctionArn: arnOf("replayChunks"),
        FinishRunFunctionArn: arnOf("finishRun"),
        BucketName: { Ref: bucketId },
        // Built from the explicit name: a reference to the state machine itself would be a cycle.
        BackfillStateMachineArn: partitionArn(
          "states:eu-central-1:123456789012:stateMachine:loki-shipper-backfill",
        ),
      },
    });
    template.hasResourceProperties("AWS::StepFunctions::StateMachine", {
      StateMachineName: "loki-shipper-replay",
      DefinitionSubstitutions: {
        PlanReplayFunctionArn: arnOf("planReplay"),
        ReplayChunksFunctionArn: arnOf("replayChunks"),
        FinishRunFunctionArn: arnOf("finishRun"),
        BucketName: { Ref: bucketId },
      },
    });
  });

  it("logs every execution event to its own log group and traces with X-Ray", () => {
    for (const machine of [workflows.backfill, workflows.replay]) {
      const properties = template.toJSON().Resources[logicalIdOf(machine)].Properties;
      expect(properties.TracingConfiguration).toEqual({ Enabled: true });
      expect(properties.LoggingConfiguration).toMatchObject({
        Level: "ALL",
        Destinations: [
          { CloudWatchLogsLogGroup: { LogGroupArn: { "Fn::GetAtt": [expect.any(String), "Arn"] } } },
        ],
      });
    }
  });

  it("lets the backfill invoke exactly its four functions and run itself as a child with .sync", () => {
    const roleId = logicalIdOf(workflows.backfill.role);
    expectRoleStatements(template, roleId, [
      {
        Sid: "InvokeTasks",
        Action: "lambda:InvokeFunction",
        Resource: [arnOf("planBackfill"), arnOf("exportSlice"), arnOf("replayChunks"), arnOf("finishRun")],
      },
      {
        Sid: "StartChildExecutions",
        Action: "states:StartExecution",
        Resource: partitionArn("states:eu-central-1:123456789012:stateMachine:loki-shipper-backfill"),
      },
      {
        Sid: "FollowChildExecutions",
        Action: ["states:DescribeExecution", "states:StopExecution"],
        Resource: partitionArn("states:eu-central-1:123456789012:execution:loki-shipper-backfill:*"),
      },
      {
        Sid: "SyncExecutionEvents",
        Action: ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        Resource: partitionArn(
          "events:eu-central-1:123456789012:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule",
        ),
      },
      { Action: Match.arrayWith(["logs:CreateLogDelivery", "logs:PutResourcePolicy"]), Resource: "*" },
      {
        Action: [
          "xray:PutTraceSegments",
          "xray:PutTelemetryRecords",
          "xray:GetSamplingRules",
          "xray:GetSamplingTargets",
        ],
      },
    ]);
  });

  it("lets the replay invoke exactly its three functions and nothing of Step Functions", () => {
    const roleId = logicalIdOf(workflows.replay.role);
    expectRoleStatements(template, roleId, [
      {
        Sid: "InvokeTasks",
        Action: "lambda:InvokeFunction",
        Resource: [arnOf("planReplay"), arnOf("replayChunks"), arnOf("finishRun")],
      },
    ]);
    const actions = statementsOfRole(template, roleId).flatMap((statement) => statement.Action);
    expect(actions.filter((action) => String(action).startsWith("states:"))).toEqual([]);
    expect(actions).not.toContain("lambda:InvokeFunction*");
  });

  it("gives each task only the S3 prefixes and CloudWatch Logs actions it uses", () => {
    const anyLogGroup = partitionArn("logs:eu-central-1:123456789012:log-group:*");
    expectRoleStatements(template, roleOf("planBackfill"), [
      {
        Sid: "FindLogGroups",
        Action: ["logs:DescribeLogGroups", "logs:ListTagsForResource"],
        Resource: anyLogGroup,
      },
      // Function labels: one function by ARN pattern, or many by listing (no resource ARN there).
      {
        Sid: "ReadFunctionLabels",
        Action: "lambda:GetFunction",
        Resource: partitionArn("lambda:eu-central-1:123456789012:function:*"),
      },
      { Sid: "ListFunctionLabels", Action: ["lambda:ListFunctions", "tag:GetResources"], Resource: "*" },
      { Action: "s3:GetObject", Resource: objectArn(bucketId, "/runs/*") },
      { Action: "s3:PutObject", Resource: objectArn(bucketId, "/runs/*") },
      {
        Action: "s3:ListBucket",
        Resource: { "Fn::GetAtt": [bucketId, "Arn"] },
        Condition: { StringLike: { "s3:prefix": ["runs/*"] } },
      },
    ]);
    expectRoleStatements(template, roleOf("exportSlice"), [
      { Sid: "ReadLogEvents", Action: "logs:FilterLogEvents", Resource: anyLogGroup },
      { Action: ["s3:PutObject", "s3:DeleteObject"], Resource: objectArn(bucketId, "/runs/*") },
      // It replays each final chunk while it reads on: what Loki does not take is kept.
      {
        Sid: "KeepUndelivered",
        Action: "s3:PutObject",
        Resource: [objectArn(bucketId, "/spill/*"), objectArn(bucketId, "/rejected/*")],
      },
    ]);
    expectRoleStatements(template, roleOf("planReplay"), [
      {
        Sid: "DrainLock",
        Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        Resource: objectArn(bucketId, "/locks/*"),
      },
      {
        Action: "s3:ListBucket",
        Condition: { StringLike: { "s3:prefix": ["spill/*", "rejected/*", "runs/*"] } },
      },
    ]);
    expectRoleStatements(template, roleOf("replayChunks"), [
      {
        Sid: "ReadChunks",
        Action: "s3:GetObject",
        Resource: [
          objectArn(bucketId, "/spill/*"),
          objectArn(bucketId, "/rejected/*"),
          objectArn(bucketId, "/runs/*"),
        ],
      },
      {
        Sid: "WriteChunks",
        Action: "s3:PutObject",
        Resource: ["/spill/*", "/rejected/*", "/malformed/*", "/runs/*", "/archive/*"].map((suffix) =>
          objectArn(bucketId, suffix),
        ),
      },
      {
        Sid: "RemoveReplayed",
        Action: "s3:DeleteObject",
        Resource: [objectArn(bucketId, "/spill/*"), objectArn(bucketId, "/rejected/*")],
      },
      { Sid: "ReadLogGroupTags", Action: "logs:ListTagsForResource", Resource: anyLogGroup },
    ]);
    expectRoleStatements(template, roleOf("finishRun"), [
      {
        Sid: "ReleaseDrainLock",
        Action: ["s3:GetObject", "s3:DeleteObject"],
        Resource: objectArn(bucketId, "/locks/*"),
      },
    ]);
    // Nothing but the replay task may delete spilled or refused events.
    for (const task of ["planBackfill", "exportSlice", "planReplay", "finishRun"] as const) {
      const deletes = statementsOfRole(template, roleOf(task)).filter((statement) =>
        [statement.Action].flat().includes("s3:DeleteObject"),
      );
      for (const statement of deletes) {
        expect(JSON.stringify(statement.Resource)).not.toMatch(/spill|rejected/);
      }
    }
    // Only the plan looks up functions: export and replay take the labels from the plan and chunks.
    for (const task of ["exportSlice", "replayChunks", "planReplay", "finishRun"] as const) {
      const actions = statementsOfRole(template, roleOf(task)).flatMap((statement) => statement.Action);
      expect(actions.filter((action) => /^(lambda:(Get|List)Function|tag:)/.test(String(action)))).toEqual(
        [],
      );
    }
  });

  it("runs every task on nodejs22.x arm64 with the shared environment", () => {
    template.resourcePropertiesCountIs(
      "AWS::Lambda::Function",
      {
        Runtime: "nodejs22.x",
        Architectures: ["arm64"],
        TracingConfig: { Mode: "Active" },
        Environment: {
          Variables: Match.objectLike({ BUCKET_NAME: { Ref: bucketId }, LOKI_URL: Match.anyValue() }),
        },
      },
      5,
    );
  });

  it("has no cdk-nag AwsSolutions finding without an acknowledged reason", () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe("Workflows with Loki credentials", () => {
  it("lets exactly the functions that talk to Loki read the secret: ExportSlice, ReplayChunks and PlanReplay", () => {
    // Given workflows whose Loki needs credentials from Secrets Manager
    const stack = testStack();
    const bucket = new ShipperBucket(stack, "Storage").bucket;
    const secret = new Secret(stack, "LokiCredentials");
    const workflows = new Workflows(stack, "Workflows", {
      bucket,
      lokiEnvironment: { BUCKET_NAME: bucket.bucketName, LOKI_URL: "https://loki.example.com" },
      namePrefix: "loki-shipper",
      credentialsSecret: secret,
    });
    // When it is synthesised
    const template = Template.fromStack(stack);
    // Then the three functions that call Loki may read the secret, and the others may not
    const readsSecret = (
      task: "replayChunks" | "planReplay" | "planBackfill" | "exportSlice" | "finishRun",
    ) =>
      statementsOfRole(template, logicalIdOf(workflows[task].function.role as never)).some(
        (statement) =>
          JSON.stringify(statement.Action).includes("secretsmanager:GetSecretValue") &&
          JSON.stringify(statement.Resource).includes(logicalIdOf(secret)),
      );
    expect(readsSecret("replayChunks")).toBe(true);
    expect(readsSecret("planReplay")).toBe(true);
    expect(readsSecret("planBackfill")).toBe(false);
    expect(readsSecret("exportSlice")).toBe(true);
    expect(readsSecret("finishRun")).toBe(false);
  });
});
