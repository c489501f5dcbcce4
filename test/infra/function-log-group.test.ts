import { Template } from "aws-cdk-lib/assertions";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { describe, expect, it } from "vitest";
import { FunctionLogGroup } from "../../infra/constructs/function-log-group.ts";
import { logicalIdOf, testStack, unacknowledgedNagFindings } from "./cdk-helpers.ts";

describe("FunctionLogGroup", () => {
  it("creates /aws/lambda/<name> with retention, tagged with the function's metadata", () => {
    // Given a function's metadata
    const stack = testStack();
    new FunctionLogGroup(stack, "Logs", {
      functionName: "fun-python",
      metadata: {
        owner: "team-a",
        runtime: "python",
        systemUnderTest: "checkout",
        extraTags: { cost_center: "42" },
      },
      retention: RetentionDays.TWO_WEEKS,
    });

    // When synthesised
    const template = Template.fromStack(stack);

    // Then the group exists up front with every tag the shipper turns into labels
    template.hasResourceProperties("AWS::Logs::LogGroup", {
      LogGroupName: "/aws/lambda/fun-python",
      RetentionInDays: 14,
    });
    const [group] = Object.values(template.findResources("AWS::Logs::LogGroup"));
    const tags = Object.fromEntries(
      ((group?.Properties.Tags ?? []) as { Key: string; Value: string }[]).map((tag) => [tag.Key, tag.Value]),
    );
    expect(tags).toEqual({
      name: "fun-python",
      owner: "team-a",
      runtime: "python",
      region: "eu-central-1",
      system_under_test: "checkout",
      cost_center: "42",
    });
    template.resourceCountIs("Custom::LokiShipperRegistration", 0);
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });

  it("asks the pipeline's registrar to subscribe the group once it exists", () => {
    // Given a registration service token
    const stack = testStack();
    const logs = new FunctionLogGroup(stack, "Logs", {
      functionName: "fun-node",
      metadata: { owner: "team-a", runtime: "nodejs", systemUnderTest: "checkout" },
      registration: { serviceToken: "arn:aws:lambda:eu-central-1:123456789012:function:provider" },
    });

    // When synthesised
    const template = Template.fromStack(stack);

    // Then a registration resource names exactly this group and depends on it
    template.hasResource("Custom::LokiShipperRegistration", {
      Properties: {
        ServiceToken: "arn:aws:lambda:eu-central-1:123456789012:function:provider",
        Selections: {
          "Fn::Join": ["", ['[{"names":["', { Ref: logicalIdOf(logs.logGroup) }, '"]}]']],
        },
      },
      DependsOn: [logicalIdOf(logs.logGroup)],
    });
  });
});
