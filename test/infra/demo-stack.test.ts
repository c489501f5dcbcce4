import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { matchesTagSelector, parseTagSelector } from "../../functions/core/cloudwatch/tag-selector.ts";
import { defaultLabelOptions, resolveGroupLabels } from "../../functions/core/labels/labels.ts";
import { DemoStack } from "../../infra/stacks/demo-stack.ts";
import { logicalIdOf, TEST_ENV, unacknowledgedNagFindings } from "./cdk-helpers.ts";

describe("DemoStack", () => {
  let demo: DemoStack;
  let template: Template;

  beforeAll(() => {
    // Given the demo with a registration token (synthesised once for this file, no bundling)
    const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    demo = new DemoStack(app, "Demo", {
      env: TEST_ENV,
      owner: "platform-team",
      systemUnderTest: "loki-shipper-demo",
      registration: { serviceToken: "arn:aws:lambda:eu-central-1:123456789012:function:provider" },
    });
    template = Template.fromStack(demo);
  });

  it("deploys fun-python and fun-node on arm64, each logging to its own tagged group", () => {
    template.hasResourceProperties("AWS::Lambda::Function", {
      FunctionName: "fun-python",
      Runtime: Match.stringLikeRegexp("^python3\\."),
      Architectures: ["arm64"],
      LoggingConfig: Match.objectLike({
        LogGroup: { Ref: logicalIdOf(demo.logGroups[0]?.logGroup as never) },
      }),
    });
    template.hasResourceProperties("AWS::Lambda::Function", {
      FunctionName: "fun-node",
      Runtime: "nodejs22.x",
      Architectures: ["arm64"],
      LoggingConfig: Match.objectLike({
        LogGroup: { Ref: logicalIdOf(demo.logGroups[1]?.logGroup as never) },
      }),
    });
    for (const [name, runtime] of [
      ["fun-python", "python"],
      ["fun-node", "nodejs"],
    ]) {
      template.hasResourceProperties("AWS::Logs::LogGroup", {
        LogGroupName: `/aws/lambda/${name}`,
        Tags: Match.arrayWith([
          { Key: "name", Value: name },
          { Key: "owner", Value: "platform-team" },
          { Key: "region", Value: "eu-central-1" },
          { Key: "runtime", Value: runtime },
          { Key: "system_under_test", Value: "loki-shipper-demo" },
        ]),
      });
    }
  });

  it("invokes both functions every minute", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      Targets: [
        Match.objectLike({ Arn: { "Fn::GetAtt": [logicalIdOf(demo.pythonFunction), "Arn"] } }),
        Match.objectLike({ Arn: { "Fn::GetAtt": [logicalIdOf(demo.nodeFunction.function), "Arn"] } }),
      ],
    });
  });

  it("asks the pipeline to subscribe both log groups", () => {
    template.resourcePropertiesCountIs(
      "Custom::LokiShipperRegistration",
      { ServiceToken: "arn:aws:lambda:eu-central-1:123456789012:function:provider" },
      2,
    );
  });

  it('gives labels that {runtime="python", region="eu-central-1", name=~"fun.*"} selects for fun-python only', () => {
    // Given the tags as deployed and the shipper's default label options
    const selector = parseTagSelector('{runtime="python", region="eu-central-1", name=~"fun.*"}');
    const matched = demo.logGroups
      .map((group) => {
        const name = String(group.tags.name);
        const { labels } = resolveGroupLabels(`/aws/lambda/${name}`, group.tags, defaultLabelOptions(), {
          accountId: "123456789012",
          region: "eu-central-1",
        });
        return { name, labels };
      })
      // When the example query's selector is applied to the stream labels
      .filter(({ labels }) => matchesTagSelector(labels, selector));

    // Then only the Python function answers
    expect(matched.map(({ name }) => name)).toEqual(["fun-python"]);
  });

  it("has no cdk-nag AwsSolutions finding without an acknowledged reason", () => {
    expect(unacknowledgedNagFindings(demo)).toEqual([]);
  });
});
