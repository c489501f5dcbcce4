import { App, type CfnElement, Stack } from "aws-cdk-lib";
import { Match, type Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";

export const TEST_ENV = { account: "123456789012", region: "eu-central-1" };

/**
 * An app for construct tests. Asset bundling is skipped (the `aws:cdk:bundling-stacks` context
 * with no stack) because these tests look at the template, not at the code; the NodeFunction
 * test bundles for real.
 */
export function testApp(options: { bundle?: boolean } = {}): App {
  return new App({ context: options.bundle ? {} : { "aws:cdk:bundling-stacks": [] } });
}

export function testStack(app: App = testApp(), id = "Test"): Stack {
  return new Stack(app, id, { env: TEST_ENV });
}

/** The logical id CDK gives a construct's CloudFormation resource. */
export function logicalIdOf(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(construct).getLogicalId(element);
}

/** `{ Fn::GetAtt: [bucket, Arn] }` + suffix, as CDK writes `bucket.arnForObjects(suffix)`. */
export function objectArn(bucketLogicalId: string, suffix: string) {
  return { "Fn::Join": ["", [{ "Fn::GetAtt": [bucketLogicalId, "Arn"] }, suffix]] };
}

/**
 * Asserts, statement by statement, that the policies CDK attaches to a role grant these statements
 * (Match.arrayWith keeps order, so each statement is looked up on its own).
 */
export function expectRoleStatements(template: Template, roleLogicalId: string, statements: object[]): void {
  for (const statement of statements) {
    template.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike(statement)]) },
      Roles: [{ Ref: roleLogicalId }],
    });
  }
}

/** Every statement of every policy attached to a role, to check what is NOT granted. */
export function statementsOfRole(template: Template, roleLogicalId: string): Record<string, unknown>[] {
  const policies = template.findResources("AWS::IAM::Policy", {
    Properties: { Roles: [{ Ref: roleLogicalId }] },
  });
  return Object.values(policies).flatMap(
    (policy) => (policy.Properties.PolicyDocument.Statement as Record<string, unknown>[]) ?? [],
  );
}

/** cdk-nag's AwsSolutions findings that no acknowledgement (with its reason) covers. */
export function unacknowledgedNagFindings(scope: IConstruct): string[] {
  const report = new AwsSolutionsChecks().validateScope(scope);
  return report.violations.flatMap((violation) =>
    violation.violatingResources.map((resource) => `${violation.ruleName} at ${resource.constructPath}`),
  );
}

/** An ARN as CDK renders it in a test stack (partition as a reference), e.g. `logs:eu-central-1:...`. */
export function partitionArn(rest: string) {
  return { "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, `:${rest}`]] };
}
