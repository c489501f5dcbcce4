import { Duration, type Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { StringParameter } from "aws-cdk-lib/aws-ssm";
import { beforeAll, describe, expect, it } from "vitest";
import { RuleSet } from "../../functions/core/delivery/rules.ts";
import { parseLabelOptions } from "../../functions/core/labels/labels.ts";
import { parseLokiTarget } from "../../functions/core/loki/loki-target.ts";
import { LokiShipper, type LokiShipperProps } from "../../infra/constructs/loki-shipper.ts";
import {
  expectRoleStatements,
  logicalIdOf,
  objectArn,
  partitionArn,
  statementsOfRole,
  testStack,
  unacknowledgedNagFindings,
} from "./cdk-helpers.ts";

const SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:loki-AbCdEf";

function givenPipeline(props: Partial<LokiShipperProps> = {}) {
  const stack = testStack();
  const pipeline = new LokiShipper(stack, "Pipeline", { lokiUrl: "https://loki.example.com", ...props });
  return { stack, pipeline, template: Template.fromStack(stack) };
}

function environmentOf(template: Template, functionLogicalId: string): Record<string, string> {
  const resource = template.toJSON().Resources[functionLogicalId];
  return resource.Properties.Environment.Variables;
}

describe("LokiShipper with defaults", () => {
  let stack: Stack;
  let pipeline: LokiShipper;
  let template: Template;
  let shipperId: string;
  let shipperRoleId: string;
  let bucketId: string;
  let queueId: string;

  beforeAll(() => {
    // Given the construct with only a Loki URL (synthesised once for this block)
    ({ stack, pipeline, template } = givenPipeline({ tenant: "team-a" }));
    shipperId = logicalIdOf(pipeline.shipper.function);
    shipperRoleId = logicalIdOf(pipeline.shipper.function.role as never);
    bucketId = logicalIdOf(pipeline.bucket.bucket);
    queueId = logicalIdOf(pipeline.deadLetterQueue);
  });

  it("runs the shipper on nodejs22.x, arm64, traced, logging to its own log group", () => {
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      TracingConfig: { Mode: "Active" },
      Handler: "index.handler",
      LoggingConfig: Match.objectLike({ LogGroup: { Ref: logicalIdOf(pipeline.shipper.logGroup) } }),
      Environment: {
        Variables: Match.objectLike({
          LOKI_URL: "https://loki.example.com",
          LOKI_TENANT: "team-a",
          LOKI_AUTH: "none",
          LOKI_PUSH_FORMAT: "protobuf",
          BUCKET_NAME: { Ref: bucketId },
          POWERTOOLS_SERVICE_NAME: "loki-shipper",
          POWERTOOLS_METRICS_NAMESPACE: "LokiShipper",
          NODE_OPTIONS: "--enable-source-maps",
        }),
      },
    });
    expect(template.toJSON().Resources[shipperId].Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it("renders an environment the functions' own config parsers accept", () => {
    const environment = { ...environmentOf(template, shipperId), BUCKET_NAME: "bucket" };
    const target = parseLokiTarget(environment);
    expect(target.pushUrl).toBe("https://loki.example.com/loki/api/v1/push");
    expect(parseLabelOptions(environment).logGroupLabel).toBe(true);
  });

  it("lets only CloudWatch Logs of this account invoke the shipper", () => {
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      FunctionName: { "Fn::GetAtt": [shipperId, "Arn"] },
      Principal: "logs.amazonaws.com",
      SourceAccount: "123456789012",
      SourceArn: partitionArn("logs:eu-central-1:123456789012:log-group:*"),
    });
  });

  it("sends failed invocations to an encrypted, TLS-only dead-letter queue", () => {
    template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
      FunctionName: { Ref: shipperId },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [queueId, "Arn"] } } },
    });
    template.hasResourceProperties("AWS::SQS::Queue", {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
    });
    template.hasResourceProperties("AWS::SQS::QueuePolicy", {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  it("grants the shipper writes under spill/, rejected/ and malformed/, tag and function reads, and the queue", () => {
    expectRoleStatements(template, shipperRoleId, [
      {
        Sid: "KeepUndelivered",
        Effect: "Allow",
        Action: "s3:PutObject",
        Resource: [
          objectArn(bucketId, "/spill/*"),
          objectArn(bucketId, "/rejected/*"),
          objectArn(bucketId, "/malformed/*"),
        ],
      },
      {
        Sid: "ReadLogGroupTags",
        Action: "logs:ListTagsForResource",
        Resource: partitionArn("logs:eu-central-1:123456789012:log-group:*"),
      },
      {
        Sid: "ReadFunctionLabels",
        Action: "lambda:GetFunction",
        Resource: partitionArn("lambda:eu-central-1:123456789012:function:*"),
      },
      // The function of a custom log group (LoggingConfig.LogGroup): ListFunctions takes no ARN.
      { Sid: "ListFunctionLabels", Action: "lambda:ListFunctions", Resource: "*" },
      {
        Action: ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
        Resource: { "Fn::GetAtt": [queueId, "Arn"] },
      },
      {
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: { "Fn::GetAtt": [logicalIdOf(pipeline.shipper.logGroup), "Arn"] },
      },
    ]);
  });

  it("grants the shipper nothing else: no reads or deletes in the bucket, no secret without credentials", () => {
    const actions = statementsOfRole(template, shipperRoleId).flatMap((statement) => statement.Action);
    expect(actions.sort()).toEqual(
      [
        "lambda:GetFunction",
        "lambda:ListFunctions",
        "logs:CreateLogStream",
        "logs:ListTagsForResource",
        "logs:PutLogEvents",
        "s3:PutObject",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
      ].sort(),
    );
    // The role is not the managed AWSLambdaBasicExecutionRole (which may write to any log group).
    template.hasResourceProperties("AWS::IAM::Role", {
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [Match.objectLike({ Principal: { Service: "lambda.amazonaws.com" } })],
      }),
      ManagedPolicyArns: Match.absent(),
    });
  });

  it("drains the spill every 5 minutes by starting the replay state machine with {source: spill}", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(5 minutes)",
      State: "ENABLED",
      Targets: [
        Match.objectLike({
          Arn: { Ref: logicalIdOf(pipeline.workflows.replay) },
          Input: JSON.stringify({ source: "spill" }),
          DeadLetterConfig: { Arn: { "Fn::GetAtt": [queueId, "Arn"] } },
        }),
      ],
    });
  });

  it("lets the drain schedule start only the replay state machine", () => {
    const [rule] = Object.values(
      template.findResources("AWS::Events::Rule", { Properties: { ScheduleExpression: "rate(5 minutes)" } }),
    );
    const eventsRoleId = rule?.Properties.Targets[0].RoleArn["Fn::GetAtt"][0] as string;
    expect(statementsOfRole(template, eventsRoleId)).toEqual([
      {
        Action: "states:StartExecution",
        Effect: "Allow",
        Resource: { Ref: logicalIdOf(pipeline.workflows.replay) },
      },
    ]);
  });

  it("alarms on spilled and refused events, the dead-letter queue and shipper errors", () => {
    for (const metricName of ["EventsSpilled", "EventsRefused"]) {
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "LokiShipper",
        MetricName: metricName,
        Dimensions: [{ Name: "service", Value: "loki-shipper" }],
        Statistic: "Sum",
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        TreatMissingData: "notBreaching",
      });
    }
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [queueId, "QueueName"] } }],
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/Lambda",
      MetricName: "Errors",
    });
    template.resourceCountIs("AWS::CloudWatch::Alarm", 4);
  });

  it("keeps the registrar from subscribing any of the pipeline's own log groups", () => {
    const registrarEnv = environmentOf(template, logicalIdOf(pipeline.registration.registrar.function));
    const excluded = JSON.stringify(stack.resolve(registrarEnv.EXCLUDED_LOG_GROUPS));
    for (const fn of [
      pipeline.shipper,
      pipeline.registration.registrar,
      pipeline.workflows.planBackfill,
      pipeline.workflows.exportSlice,
      pipeline.workflows.planReplay,
      pipeline.workflows.replayChunks,
      pipeline.workflows.finishRun,
    ]) {
      expect(excluded).toContain(`{"Ref":"${logicalIdOf(fn.logGroup)}"}`);
    }
  });

  it("has no cdk-nag AwsSolutions finding without an acknowledged reason", () => {
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});

describe("LokiShipper options", () => {
  it("reads credentials from a secret in the functions that push, and reserves concurrency", () => {
    // Given a secret, basic auth with a user name and reserved concurrency
    const { stack, pipeline, template } = (() => {
      const stack = testStack();
      const secret = Secret.fromSecretCompleteArn(stack, "LokiSecret", SECRET_ARN);
      const pipeline = new LokiShipper(stack, "Pipeline", {
        lokiUrl: "https://logs.example.com",
        credentialsSecret: secret,
        username: "123456",
        shipperReservedConcurrency: 20,
      });
      return { stack, pipeline, template: Template.fromStack(stack) };
    })();

    // Then the shipper and the replay task may read the secret, and their environment names it
    for (const fn of [pipeline.shipper, pipeline.workflows.replayChunks]) {
      expectRoleStatements(template, logicalIdOf(fn.function.role as never), [
        {
          Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
          Resource: SECRET_ARN,
        },
      ]);
    }
    const shipperEnv = environmentOf(template, logicalIdOf(pipeline.shipper.function));
    expect(shipperEnv).toMatchObject({
      LOKI_AUTH: "basic",
      LOKI_USERNAME: "123456",
      LOKI_SECRET_ARN: SECRET_ARN,
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs22.x",
      ReservedConcurrentExecutions: 20,
      Environment: { Variables: Match.objectLike({ LOKI_AUTH: "basic" }) },
    });
    // And the plan task, which does not push, gets no secret
    const planActions = statementsOfRole(
      template,
      logicalIdOf(pipeline.workflows.planBackfill.function.role as never),
    ).flatMap((statement) => statement.Action);
    expect(planActions).not.toContain("secretsmanager:GetSecretValue");
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });

  it("turns function labels off, and with them the Lambda and Tagging API permissions", () => {
    // Given functionLabels: false
    const stack = testStack();
    const pipeline = new LokiShipper(stack, "Pipeline", {
      lokiUrl: "https://logs.example.com",
      labels: { functionLabels: false },
    });
    const template = Template.fromStack(stack);

    // Then the functions are told so, and no role may read functions or list tagged resources
    expect(environmentOf(template, logicalIdOf(pipeline.shipper.function))).toMatchObject({
      LABEL_LAMBDA_FUNCTION: "false",
    });
    for (const fn of [pipeline.shipper, pipeline.workflows.planBackfill]) {
      const actions = statementsOfRole(template, logicalIdOf(fn.function.role as never)).flatMap(
        (statement) => statement.Action,
      );
      expect(actions.filter((action) => /^(lambda:(Get|List)Function|tag:)/.test(String(action)))).toEqual(
        [],
      );
    }
  });

  it("routes tenants by tag with the variables the functions parse, and widens no permission", () => {
    // Given tenant routing by the loki_tenant tag among two tenants and a pattern
    const allowedTenants = ["team-a", "team-b", "/^shared-[a-z]{2,8}$/"];
    const routed = givenPipeline({ tenant: "main", allowedTenants, labels: { tenantTag: "loki_tenant" } });
    const plain = givenPipeline({ tenant: "main" });

    // Then every function that pushes is told the tag and the allow list, which it parses as such,
    for (const fn of [routed.pipeline.shipper, routed.pipeline.workflows.replayChunks]) {
      const environment = environmentOf(routed.template, logicalIdOf(fn.function));
      expect(environment).toMatchObject({
        LABEL_TENANT_TAG: "loki_tenant",
        LOKI_TENANTS_ALLOWED: "team-a,team-b,/^shared-[a-z]{2,8}$/",
      });
      const { tenants } = parseLabelOptions(environment);
      expect({
        tagKey: tenants.tagKey,
        names: [...tenants.names],
        patterns: tenants.patterns.length,
      }).toEqual({
        tagKey: "loki_tenant",
        names: ["team-a", "team-b"],
        patterns: 1,
      });
    }
    // and no IAM policy differs from the pipeline without routing: it reads the same tags already.
    expect(routed.template.findResources("AWS::IAM::Policy")).toEqual(
      plain.template.findResources("AWS::IAM::Policy"),
    );
    expect(routed.template.findResources("AWS::IAM::Role")).toEqual(
      plain.template.findResources("AWS::IAM::Role"),
    );
  });

  it("refuses a tenant tag without the tenants it may choose, naming the tag", () => {
    const stack = testStack();
    expect(
      () =>
        new LokiShipper(stack, "Pipeline", {
          lokiUrl: "https://logs.example.com",
          labels: { tenantTag: "loki_tenant" },
        }),
    ).toThrow(
      'LokiShipper: labels.tenantTag "loki_tenant" lets whoever may tag a log group or function choose its Loki tenant, so it needs allowedTenants, the tenants they may choose. Received: none',
    );
  });

  it("reads credentials from an SSM parameter when given one", () => {
    const stack = testStack();
    const parameter = StringParameter.fromSecureStringParameterAttributes(stack, "Param", {
      parameterName: "/loki/password",
    });
    const pipeline = new LokiShipper(stack, "Pipeline", {
      lokiUrl: "https://logs.example.com",
      credentialsParameter: parameter,
      authType: "bearer",
    });
    const template = Template.fromStack(stack);
    expect(environmentOf(template, logicalIdOf(pipeline.shipper.function))).toMatchObject({
      LOKI_AUTH: "bearer",
      LOKI_SECRET_PARAMETER: "/loki/password",
    });
    expectRoleStatements(template, logicalIdOf(pipeline.shipper.function.role as never), [
      { Action: Match.arrayWith(["ssm:GetParameter"]) },
    ]);
  });

  it("refuses auth without credentials, naming what is missing", () => {
    const stack = testStack();
    expect(
      () => new LokiShipper(stack, "Pipeline", { lokiUrl: "https://logs.example.com", authType: "bearer" }),
    ).toThrow(
      'LokiShipper: authType "bearer" needs credentialsSecret or credentialsParameter. Received: neither',
    );
  });

  it("passes label options to the functions as the LABEL_* variables the shipper reads", () => {
    const { pipeline, template } = givenPipeline({
      labels: {
        tagAllow: ["name", "owner", "runtime", "region", "system_under_test"],
        tagPrefix: "app_",
        logGroupLabel: false,
        staticLabels: { cluster: "prod" },
        maxLabelNames: 12,
      },
    });
    const environment = environmentOf(template, logicalIdOf(pipeline.workflows.replayChunks.function));
    expect(environment).toMatchObject({
      LABEL_TAG_ALLOW: "name,owner,runtime,region,system_under_test",
      LABEL_TAG_PREFIX: "app_",
      LABEL_LOG_GROUP: "false",
      LABEL_STATIC: "cluster=prod",
      LABEL_MAX_COUNT: "12",
    });
    expect(parseLabelOptions(environment)).toMatchObject({
      allow: ["name", "owner", "runtime", "region", "system_under_test"],
      prefix: "app_",
      logGroupLabel: false,
      staticLabels: { cluster: "prod" },
      maxLabelNames: 12,
    });
  });

  it("passes the rules to the shipper and the backfill export as the LOG_RULES list they compile", () => {
    const rules = [
      { action: "drop" as const, pattern: "GET /health", logGroups: "^/aws/lambda/api-" },
      { action: "mask" as const, builtin: "all" as const },
      { action: "mask" as const, pattern: "(password=)\\S+", replacement: "$1***" },
    ];
    const { pipeline, template } = givenPipeline({ rules });
    for (const fn of [pipeline.shipper.function, pipeline.workflows.exportSlice.function]) {
      const environment = environmentOf(template, logicalIdOf(fn));
      expect(JSON.parse(environment.LOG_RULES as string)).toEqual(rules);
      expect(RuleSet.fromJson(environment.LOG_RULES).describe("/aws/lambda/api-users")).toHaveLength(3);
    }
    const plain = givenPipeline();
    expect(
      environmentOf(plain.template, logicalIdOf(plain.pipeline.shipper.function)).LOG_RULES,
    ).toBeUndefined();
  });

  it("turns the drain off, and uses a KMS key for the bucket with grants to the functions", () => {
    const stack = testStack();
    const key = new Key(stack, "Key", { enableKeyRotation: true });
    const pipeline = new LokiShipper(stack, "Pipeline", {
      lokiUrl: "https://logs.example.com",
      spillDrainInterval: null,
      encryptionKey: key,
    });
    const template = Template.fromStack(stack);
    template.resourcePropertiesCountIs("AWS::Events::Rule", { ScheduleExpression: Match.anyValue() }, 0);
    template.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(["kms:Encrypt", "kms:GenerateDataKey*"]),
            Resource: { "Fn::GetAtt": [logicalIdOf(key), "Arn"] },
          }),
        ]),
      },
      Roles: [{ Ref: logicalIdOf(pipeline.shipper.function.role as never) }],
    });
  });

  it("drains on another schedule when asked", () => {
    const { template } = givenPipeline({ spillDrainInterval: Duration.minutes(15) });
    template.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(15 minutes)" });
  });

  it("subscribes the whole account with one policy that excludes the pipeline's own log groups", () => {
    // Given the account-level subscription filter policy
    const { stack, pipeline, template } = givenPipeline({ accountSubscriptionPolicy: true });

    // Then one policy delivers every group to the shipper...
    template.hasResourceProperties("AWS::Logs::AccountPolicy", {
      PolicyType: "SUBSCRIPTION_FILTER_POLICY",
      Scope: "ALL",
    });
    const [policy] = Object.values(template.findResources("AWS::Logs::AccountPolicy"));
    expect(policy?.Properties.PolicyDocument).toEqual({
      "Fn::Join": [
        "",
        [
          '{"DestinationArn":"',
          { "Fn::GetAtt": [logicalIdOf(pipeline.shipper.function), "Arn"] },
          '","FilterPattern":""}',
        ],
      ],
    });
    // ...except each of the pipeline's own log groups
    const criteria = JSON.stringify(policy?.Properties.SelectionCriteria);
    expect(criteria).toContain("LogGroupName NOT IN [");
    for (const name of pipeline.ownLogGroupNames) {
      expect(criteria).toContain(JSON.stringify(stack.resolve(name)));
    }
  });

  it("refuses per-group subscriptions on top of the account policy", () => {
    const stack = testStack();
    expect(
      () =>
        new LokiShipper(stack, "Pipeline", {
          lokiUrl: "https://logs.example.com",
          accountSubscriptionPolicy: true,
          subscriptions: [{ prefixes: ["/aws/lambda/"] }],
        }),
    ).toThrow("LokiShipper: accountSubscriptionPolicy already covers every log group; remove subscriptions");
  });
});
