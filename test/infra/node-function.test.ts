import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { App, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { beforeAll, describe, expect, it } from "vitest";
import { NodeFunction } from "../../infra/constructs/node-function.ts";
import {
  logicalIdOf,
  statementsOfRole,
  testApp,
  testStack,
  unacknowledgedNagFindings,
} from "./cdk-helpers.ts";

const ENTRY = new URL("./fixtures/echo-handler.ts", import.meta.url).pathname;
const PREBUILT = new URL("./fixtures/prebuilt-echo/", import.meta.url).pathname;
const SDK_ENTRY = new URL("./fixtures/sdk-handler.ts", import.meta.url).pathname;

/** The bundled index.mjs of a function of a synthesised stack. */
function bundledCode(stack: Stack, fn: NodeFunction): string {
  const code = Template.fromStack(stack).toJSON().Resources[logicalIdOf(fn.function)].Properties.Code;
  const assetDir = `${(stack.node.root as App).synth().directory}/asset.${String(code.S3Key).replace(/\.zip$/, "")}`;
  return readFileSync(`${assetDir}/index.mjs`, "utf8");
}

describe("NodeFunction", () => {
  let stack: Stack;
  let fn: NodeFunction;
  let template: Template;
  let bundleDir: string;

  beforeAll(() => {
    // Given a function with defaults, bundled for real with the local esbuild (no Docker)
    stack = testStack(testApp({ bundle: true }));
    fn = new NodeFunction(stack, "Echo", { entry: ENTRY, logRetention: RetentionDays.TWO_WEEKS });
    template = Template.fromStack(stack);
    const code = template.toJSON().Resources[logicalIdOf(fn.function)].Properties.Code;
    const assetHash = String(code.S3Key).replace(/\.zip$/, "");
    bundleDir = `${(stack.node.root as App).synth().directory}/asset.${assetHash}`;
  });

  it("runs on nodejs22.x, arm64, with X-Ray tracing, JSON logs and source maps", () => {
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      TracingConfig: { Mode: "Active" },
      LoggingConfig: { LogFormat: "JSON", LogGroup: { Ref: logicalIdOf(fn.logGroup) } },
      Environment: {
        Variables: { POWERTOOLS_SERVICE_NAME: "Echo", NODE_OPTIONS: "--enable-source-maps" },
      },
    });
  });

  it("writes to an explicit log group with retention", () => {
    template.hasResource("AWS::Logs::LogGroup", {
      Properties: { RetentionInDays: 14 },
      DeletionPolicy: "Delete",
    });
  });

  it("bundles the handler as minified ESM with a source map", () => {
    expect(existsSync(`${bundleDir}/index.mjs`)).toBe(true);
    expect(existsSync(`${bundleDir}/index.mjs.map`)).toBe(true);
    const bundle = readFileSync(`${bundleDir}/index.mjs`, "utf8");
    expect(bundle.startsWith("import { createRequire } from 'node:module';")).toBe(true);
    expect(bundle).toMatch(/export\s*\{[^}]*handler/);
    expect(bundle).toContain("//# sourceMappingURL=index.mjs.map");
    // Minified: the function body is on a few lines, not one statement per line.
    expect(bundle.split("\n").length).toBeLessThan(6);
  });

  it("has its own role that may write only to its own log group", () => {
    const roleId = logicalIdOf(fn.function.role as never);
    template.hasResourceProperties("AWS::IAM::Role", {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: "lambda.amazonaws.com" } })],
      }),
      ManagedPolicyArns: Match.absent(),
    });
    expect(statementsOfRole(template, roleId)).toEqual([
      {
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Effect: "Allow",
        Resource: { "Fn::GetAtt": [logicalIdOf(fn.logGroup), "Arn"] },
      },
      { Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], Effect: "Allow", Resource: "*" },
    ]);
  });

  it("has no cdk-nag AwsSolutions finding without an acknowledged reason", () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe("NodeFunction with a pre-built bundle (the installed package's)", () => {
  it("deploys the bundle directory as it is, without bundling the entry", () => {
    // Given a directory that already holds index.mjs and its map, and an entry that does not exist
    const stack = testStack(testApp({ bundle: true }));
    const fn = new NodeFunction(stack, "Echo", { entry: "/nowhere/echo.ts", bundleDirectory: PREBUILT });

    // When the stack is synthesised
    const template = Template.fromStack(stack);
    const assembly = (stack.node.root as App).synth();

    // Then the function runs index.handler from an asset with exactly those files, with the same defaults
    const properties = template.toJSON().Resources[logicalIdOf(fn.function)].Properties;
    expect(properties).toMatchObject({
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      Handler: "index.handler",
      TracingConfig: { Mode: "Active" },
      Environment: { Variables: { NODE_OPTIONS: "--enable-source-maps" } },
    });
    const assetDir = `${assembly.directory}/asset.${String(properties.Code.S3Key).replace(/\.zip$/, "")}`;
    expect(readdirSync(assetDir).sort()).toEqual(["index.mjs", "index.mjs.map"]);
    expect(readFileSync(`${assetDir}/index.mjs`, "utf8")).toBe(readFileSync(`${PREBUILT}index.mjs`, "utf8"));
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe("NodeFunction's SDK packages", () => {
  it("leaves every @aws-sdk package to the Lambda runtime by default", () => {
    const stack = testStack(testApp({ bundle: true }));
    const fn = new NodeFunction(stack, "Sdk", { entry: SDK_ENTRY });

    const bundle = bundledCode(stack, fn);

    expect(bundle).toMatch(/from\s*"@aws-sdk\/client-cloudwatch-logs"/);
    expect(bundle).toMatch(/from\s*"@aws-sdk\/client-s3"/);
  });

  it("bundles the packages not named in externalModules", () => {
    const stack = testStack(testApp({ bundle: true }));
    const fn = new NodeFunction(stack, "Sdk", { entry: SDK_ENTRY, externalModules: ["@aws-sdk/client-s3"] });

    const bundle = bundledCode(stack, fn);

    expect(bundle).not.toMatch(/from\s*"@aws-sdk\/client-cloudwatch-logs"/);
    expect(bundle).toContain("ListTagsForResource");
    expect(bundle).toMatch(/from\s*"@aws-sdk\/client-s3"/);
  });
});
