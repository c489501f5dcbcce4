import { Stack, Token, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

/**
 * cdk-nag v3 acknowledges a wildcard finding (AwsSolutions-IAM5) only by its exact id, which
 * names the resource as written in the template with references flattened (`<Logical.Arn>`).
 * These helpers build those ids from the same values the policy uses, so that each
 * acknowledgement covers exactly the wildcard it explains and nothing else.
 */
export function acknowledgeWildcardResources(scope: IConstruct, resources: string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of resources) {
    const flat = Token.isUnresolved(resource) ? flatten(stack.resolve(resource)) : resource;
    if (flat.includes("*"))
      Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${flat}]`, reason });
  }
}

/** Statements CDK adds with Resource "*" for X-Ray and Step Functions log delivery. */
export function acknowledgeServiceWildcard(scope: IConstruct, reason: string): void {
  Validations.of(scope).acknowledge({ id: "AwsSolutions-IAM5[Resource::*]", reason });
}

/** Renders a resolved CloudFormation value the way cdk-nag names it in a finding. */
function flatten(value: unknown): string {
  if (typeof value === "string") return value.replace(/\$\{/g, "<").replace(/\}/g, ">");
  if (value && typeof value === "object") {
    const node = value as Record<string, unknown>;
    if (Array.isArray(node["Fn::Join"])) {
      const [delimiter, parts] = node["Fn::Join"] as [string, unknown[]];
      return parts.map(flatten).join(delimiter);
    }
    if (node["Fn::Sub"] !== undefined) return flatten(node["Fn::Sub"]);
    if (Array.isArray(node["Fn::GetAtt"])) {
      const [resource, attribute] = node["Fn::GetAtt"] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (node["Fn::ImportValue"] !== undefined) return flatten(node["Fn::ImportValue"]);
    if (node.Ref !== undefined) return `<${flatten(node.Ref)}>`;
  }
  return JSON.stringify(value);
}
