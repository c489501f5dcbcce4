import { Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Function as LambdaFn } from "aws-cdk-lib/aws-lambda";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { describe, expect, it } from "vitest";
import {
  LogGroupRegistration,
  type LogGroupRegistrationProps,
} from "../../infra/constructs/log-group-registration.ts";
import {
  expectRoleStatements,
  logicalIdOf,
  partitionArn,
  statementsOfRole,
  testStack,
  unacknowledgedNagFindings,
} from "./cdk-helpers.ts";

function givenRegistration(props: Partial<LogGroupRegistrationProps> = {}) {
  const stack = testStack();
  // A stand-in destination: only its ARN matters to the registration.
  const shipper = LambdaFn.fromFunctionArn(
    stack,
    "Shipper",
    "arn:aws:lambda:eu-central-1:123456789012:function:loki-shipper",
  );
  const deadLetterQueue = new Queue(stack, "Dlq", {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  });
  Validations.of(deadLetterQueue).acknowledge({
    id: "AwsSolutions-SQS3",
    reason: "Stands for the pipeline's dead-letter queue, which has none of its own.",
  });
  const registration = new LogGroupRegistration(stack, "Registration", {
    shipper,
    deadLetterQueue,
    excludedLogGroups: ["/aws/lambda/loki-shipper"],
    selections: [{ prefixes: ["/aws/lambda/fun-"] }, { tagSelector: 'system_under_test="demo"' }],
    ...props,
  });
  return { stack, registration, deadLetterQueue, template: Template.fromStack(stack) };
}

describe("LogGroupRegistration", () => {
  it("subscribes the existing groups at deploy time through a custom resource", () => {
    const { template } = givenRegistration();
    template.hasResourceProperties("Custom::LokiShipperRegistration", {
      Selections: JSON.stringify([
        { prefixes: ["/aws/lambda/fun-"] },
        { tagSelector: 'system_under_test="demo"' },
      ]),
      DestinationArn: "arn:aws:lambda:eu-central-1:123456789012:function:loki-shipper",
    });
  });

  it("sends CloudTrail's CreateLogGroup and TagResource events to the registrar, with retries and a DLQ", () => {
    const { registration, deadLetterQueue, template } = givenRegistration();
    template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.logs"],
        "detail-type": ["AWS API Call via CloudTrail"],
        detail: {
          eventSource: ["logs.amazonaws.com"],
          eventName: ["CreateLogGroup", "TagResource", "TagLogGroup"],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { "Fn::GetAtt": [logicalIdOf(registration.registrar.function), "Arn"] },
          RetryPolicy: { MaximumRetryAttempts: 4, MaximumEventAgeInSeconds: 7200 },
          DeadLetterConfig: { Arn: { "Fn::GetAtt": [logicalIdOf(deadLetterQueue), "Arn"] } },
        }),
      ],
    });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "events.amazonaws.com",
      FunctionName: { "Fn::GetAtt": [logicalIdOf(registration.registrar.function), "Arn"] },
    });
  });

  it("configures the registrar with the selections, the destination and every excluded group", () => {
    const { stack, registration, template } = givenRegistration();
    const variables =
      template.toJSON().Resources[logicalIdOf(registration.registrar.function)].Properties.Environment
        .Variables;
    expect(variables).toMatchObject({
      DESTINATION_ARN: "arn:aws:lambda:eu-central-1:123456789012:function:loki-shipper",
      FILTER_NAME: "loki-shipper",
      FILTER_PATTERN: "",
      REGISTRATION_SELECTIONS: JSON.stringify([
        { prefixes: ["/aws/lambda/fun-"] },
        { tagSelector: 'system_under_test="demo"' },
      ]),
    });
    // The registrar's own log group and the provider's are excluded along with the given ones.
    const excluded = JSON.stringify(stack.resolve(variables.EXCLUDED_LOG_GROUPS));
    expect(excluded).toContain("/aws/lambda/loki-shipper");
    expect(excluded).toContain(`{"Ref":"${logicalIdOf(registration.registrar.logGroup)}"}`);
  });

  it("grants the registrar the five subscription actions on log groups, and nothing else of CloudWatch Logs", () => {
    const { registration, template } = givenRegistration();
    const roleId = logicalIdOf(registration.registrar.function.role as never);
    expectRoleStatements(template, roleId, [
      {
        Sid: "LinkLogGroups",
        Effect: "Allow",
        Action: [
          "logs:DescribeLogGroups",
          "logs:DescribeSubscriptionFilters",
          "logs:PutSubscriptionFilter",
          "logs:DeleteSubscriptionFilter",
          "logs:ListTagsForResource",
        ],
        Resource: partitionArn("logs:eu-central-1:123456789012:log-group:*"),
      },
    ]);
    const actions = statementsOfRole(template, roleId).flatMap((statement) => statement.Action);
    expect(actions).not.toContain("logs:PutRetentionPolicy");
    expect(actions).not.toContain("logs:DeleteRetentionPolicy");
    expect(actions).not.toContain("logs:TagResource");
  });

  it("runs the registrar on nodejs22.x arm64 and lets it finish large selections", () => {
    const { template } = givenRegistration();
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      Timeout: 600,
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: "loki-shipper-registrar" }) },
    });
  });

  it("creates neither custom resource nor rule without selections, and no rule when new groups are off", () => {
    const none = givenRegistration({ selections: [] }).template;
    none.resourceCountIs("Custom::LokiShipperRegistration", 0);
    none.resourceCountIs("AWS::Events::Rule", 0);

    const deployOnly = givenRegistration({ subscribeNewLogGroups: false }).template;
    deployOnly.resourceCountIs("Custom::LokiShipperRegistration", 1);
    deployOnly.resourceCountIs("AWS::Events::Rule", 0);
  });

  it("has no cdk-nag AwsSolutions finding without an acknowledged reason", () => {
    const { stack } = givenRegistration();
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });
});
