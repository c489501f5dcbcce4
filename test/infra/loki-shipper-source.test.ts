import { Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { LokiShipper } from "../../infra/constructs/loki-shipper.ts";
import {
  LokiShipperSource,
  type LokiShipperSourceProps,
} from "../../infra/constructs/loki-shipper-source.ts";
import { logicalIdOf, partitionArn, testApp, testStack, unacknowledgedNagFindings } from "./cdk-helpers.ts";

const CENTRAL = "999999999999";
const TRUSTED = [
  `arn:aws:iam::${CENTRAL}:role/Central-PipelineShipperRoleF30D302C-AbC`,
  `arn:aws:iam::${CENTRAL}:role/Central-PipelineWorkflowsExportSliceRole-DeF`,
];
const READER = { trustedRoleArns: TRUSTED, region: "eu-central-1" };

/** A stack as a StackSet deploys it: no account or region known at synth time. */
function givenStackSetSource(props: Partial<LokiShipperSourceProps> = {}) {
  const stack = new Stack(testApp(), "Source");
  const source = new LokiShipperSource(stack, "Source", {
    centralAccountId: CENTRAL,
    readerRole: READER,
    ...props,
  });
  return { stack, source, template: Template.fromStack(stack) };
}

const destinationInThisRegion = {
  "Fn::Join": [
    "",
    [
      "arn:",
      { Ref: "AWS::Partition" },
      ":logs:",
      { Ref: "AWS::Region" },
      `:${CENTRAL}:destination:loki-shipper`,
    ],
  ],
};

describe("LokiShipperSource, account policy mode", () => {
  it("subscribes the account with one policy named after its region, to the central destination of that region", () => {
    const { stack, template } = givenStackSetSource({ excludedLogGroups: ["/aws/vpc/flow-logs"] });
    const [policy] = Object.values(template.findResources("AWS::Logs::AccountPolicy"));
    expect(policy?.Properties).toMatchObject({ PolicyType: "SUBSCRIPTION_FILTER_POLICY", Scope: "ALL" });
    expect(policy?.Properties.PolicyName).toEqual({
      "Fn::Join": ["", ["loki-shipper-", { Ref: "AWS::Region" }]],
    });
    const document = JSON.stringify(stack.resolve(policy?.Properties.PolicyDocument));
    expect(document).toContain('{\\"DestinationArn\\":\\"arn:');
    expect(document).toContain(`:${CENTRAL}:destination:loki-shipper\\",\\"FilterPattern\\":\\"\\"}`);
    expect(policy?.Properties.SelectionCriteria).toBe('LogGroupName NOT IN ["/aws/vpc/flow-logs"]');
  });

  it("excludes the pipeline's own log groups when the pipeline runs in the same account", () => {
    // Given the pipeline and a source in the same stack
    const stack = testStack();
    const pipeline = new LokiShipper(stack, "Pipeline", { lokiUrl: "https://loki.example.com" });
    new LokiShipperSource(stack, "Source", { centralAccountId: CENTRAL, readerRole: false, pipeline });
    const [policy] = Object.values(Template.fromStack(stack).findResources("AWS::Logs::AccountPolicy"));

    // Then every one of its log groups is in the NOT IN list
    const criteria = JSON.stringify(stack.resolve(policy?.Properties.SelectionCriteria));
    expect(criteria).toContain("LogGroupName NOT IN [");
    for (const name of [...pipeline.ownLogGroupNames, pipeline.registration.providerLogGroup.logGroupName]) {
      expect(criteria).toContain(JSON.stringify(stack.resolve(name)));
    }
    expect(policy?.Properties.PolicyName).toBe("loki-shipper-eu-central-1");
  });

  it("names a sender role in the policy when the destination allows an organization", () => {
    const { stack, source, template } = givenStackSetSource({ organizationSender: true });
    const [policy] = Object.values(template.findResources("AWS::Logs::AccountPolicy"));
    expect(JSON.stringify(stack.resolve(policy?.Properties.PolicyDocument))).toContain(
      `"RoleArn\\":\\"",{"Fn::GetAtt":["${logicalIdOf(source.senderRole as never)}","Arn"]}`,
    );
    template.hasResourceProperties("AWS::IAM::Role", {
      AssumeRolePolicyDocument: {
        Statement: [
          { Action: "sts:AssumeRole", Effect: "Allow", Principal: { Service: "logs.amazonaws.com" } },
        ],
      },
      Policies: [
        {
          PolicyName: "deliver",
          PolicyDocument: {
            Statement: [{ Action: "logs:PutLogEvents", Effect: "Allow", Resource: destinationInThisRegion }],
          },
        },
      ],
    });
  });
});

describe("LokiShipperSource, group filters mode", () => {
  it("puts a filter named after the region on each listed log group, and no account policy", () => {
    const { template } = givenStackSetSource({
      mode: "group-filters",
      logGroupNames: ["/aws/lambda/checkout", "/ecs/orders"],
      filterPattern: "?ERROR ?WARN",
    });
    template.resourceCountIs("AWS::Logs::AccountPolicy", 0);
    for (const logGroupName of ["/aws/lambda/checkout", "/ecs/orders"]) {
      template.hasResourceProperties("AWS::Logs::SubscriptionFilter", {
        LogGroupName: logGroupName,
        FilterName: { "Fn::Join": ["", ["loki-shipper-", { Ref: "AWS::Region" }]] },
        FilterPattern: "?ERROR ?WARN",
        DestinationArn: destinationInThisRegion,
      });
    }
  });
});

describe("LokiShipperSource reader role", () => {
  it("is trusted only by the central functions' roles, created in one region, and reads what the shipper reads", () => {
    const { stack, source, template } = givenStackSetSource();
    const roleId = logicalIdOf(source.readerRole as never);
    const role = template.toJSON().Resources[roleId];

    // Trust: the central account, and within it only the listed roles
    expect(role.Properties.RoleName).toBe("loki-shipper-reader");
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: "sts:AssumeRole",
        Effect: "Allow",
        Principal: { AWS: partitionArn(`iam::${CENTRAL}:root`) },
        Condition: { ArnLike: { "aws:PrincipalArn": TRUSTED } },
      },
    ]);
    // Created only in its region: IAM is global, the StackSet deploys to every region
    expect(role.Condition).toBeDefined();
    expect(template.toJSON().Conditions[role.Condition]).toEqual({
      "Fn::Equals": [{ Ref: "AWS::Region" }, "eu-central-1"],
    });

    // Permissions, statement by statement
    const anyRegionOfThisAccount = (service: string, resource: string) => ({
      "Fn::Join": [
        "",
        ["arn:", { Ref: "AWS::Partition" }, `:${service}:*:`, { Ref: "AWS::AccountId" }, resource],
      ],
    });
    expect(role.Properties.Policies).toEqual([
      {
        PolicyName: "read",
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "ReadLogGroups",
              Effect: "Allow",
              Action: ["logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:FilterLogEvents"],
              Resource: anyRegionOfThisAccount("logs", ":log-group:*"),
            },
            {
              Sid: "ReadFunctionLabels",
              Effect: "Allow",
              Action: "lambda:GetFunction",
              Resource: anyRegionOfThisAccount("lambda", ":function:*"),
            },
            { Sid: "ListFunctionLabels", Effect: "Allow", Action: "lambda:ListFunctions", Resource: "*" },
          ],
        },
      },
    ]);
    expect(template.findResources("AWS::IAM::Policy")).toEqual({});
    expect(unacknowledgedNagFindings(stack)).toEqual([]);
  });

  it("is left out with readerRole false", () => {
    const { template } = givenStackSetSource({ readerRole: false });
    template.resourceCountIs("AWS::IAM::Role", 0);
  });
});

describe("LokiShipperSource validation", () => {
  it.each([
    [
      { centralAccountId: undefined },
      "LokiShipperSource: give destinationArn or centralAccountId, exactly one of the two. Received: neither",
    ],
    [
      { centralAccountId: "9999" },
      'LokiShipperSource: centralAccountId must be a 12-digit AWS account id. Received: "9999"',
    ],
    [
      { mode: "group-filters" as const },
      'LokiShipperSource: mode "group-filters" needs logGroupNames. Received: none',
    ],
    [
      { readerRole: { ...READER, trustedRoleArns: [...TRUSTED, "arn:aws:iam::111111111111:role/other"] } },
      "LokiShipperSource: readerRole.trustedRoleArns must be IAM role ARNs of one central account.",
    ],
  ])("refuses %j with a message naming the bad value", (props, message) => {
    expect(() => givenStackSetSource(props)).toThrow(message);
  });
});
