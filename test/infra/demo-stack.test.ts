import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { matchesTagSelector, parseTagSelector } from "../../functions/core/cloudwatch/tag-selector.ts";
import { functionLabelSources } from "../../functions/core/labels/function-labels.ts";
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

  it("deploys fun-python (python3.12, text logs) and fun-node (JSON logs) on arm64, tagged, each logging to its own untagged group", () => {
    // Text REPORT lines from fun-python, JSON platform.report records from fun-node.
    for (const [name, runtime, index, logFormat] of [
      ["fun-python", "python3.12", 0, Match.absent()],
      ["fun-node", "nodejs22.x", 1, "JSON"],
    ] as const) {
      template.hasResourceProperties("AWS::Lambda::Function", {
        FunctionName: name,
        Runtime: runtime,
        Architectures: ["arm64"],
        LoggingConfig: Match.objectLike({
          LogGroup: { Ref: logicalIdOf(demo.logGroups[index]?.logGroup as never) },
          LogFormat: logFormat,
        }),
        Tags: Match.arrayWith([
          { Key: "name", Value: name },
          { Key: "owner", Value: "platform-team" },
          { Key: "system_under_test", Value: "loki-shipper-demo" },
        ]),
      });
      // The log group is left as Lambda would create it: the labels come from the function.
      template.hasResourceProperties("AWS::Logs::LogGroup", {
        LogGroupName: `/aws/lambda/${name}`,
        Tags: Match.absent(),
      });
    }
  });

  it("asks the pipeline to subscribe both log groups", () => {
    template.resourcePropertiesCountIs(
      "Custom::LokiShipperRegistration",
      { ServiceToken: "arn:aws:lambda:eu-central-1:123456789012:function:provider" },
      2,
    );
  });

  it('gives labels that {runtime="python", region="eu-central-1", name=~"fun.*"} selects for fun-python only', () => {
    // Given the functions' tags and runtimes as deployed, untagged log groups, and the shipper's
    // default label options
    const selector = parseTagSelector('{runtime="python", region="eu-central-1", name=~"fun.*"}');
    const functions = [
      { name: "fun-python", runtime: "python3.12", tags: demo.logGroups[0]?.tags ?? {} },
      { name: "fun-node", runtime: "nodejs22.x", tags: demo.logGroups[1]?.tags ?? {} },
    ];
    const matched = functions
      .map(({ name, runtime, tags }) => {
        const sources = { groupTags: {}, ...functionLabelSources({ found: true, tags, runtime }) };
        const { labels } = resolveGroupLabels(`/aws/lambda/${name}`, sources, defaultLabelOptions(), {
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
