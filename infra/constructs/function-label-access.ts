import { ArnFormat, Stack } from "aws-cdk-lib";
import { type IGrantable, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IConstruct } from "constructs";
import { acknowledgeServiceWildcard, acknowledgeWildcardResources } from "./nag.ts";

/**
 * IAM for labels from the Lambda function behind a log group (functions/core/labels/):
 * `lambda:GetFunction` on the account's functions of the region, and `lambda:ListFunctions` to
 * find the function of a custom log group (`LoggingConfig.LogGroup`); with `bulk` (the backfill
 * plan, which looks up many functions at once) also `tag:GetResources`. Those two accept no
 * resource ARN (Resource "*").
 */
export function grantFunctionLabelLookups(
  grantee: IGrantable,
  nagScope: IConstruct,
  options: { bulk: boolean },
): void {
  const anyFunction = Stack.of(nagScope).formatArn({
    service: "lambda",
    resource: "function",
    resourceName: "*",
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      sid: "ReadFunctionLabels",
      actions: ["lambda:GetFunction"],
      resources: [anyFunction],
    }),
  );
  acknowledgeWildcardResources(
    nagScope,
    [anyFunction],
    "Labels come from the function behind whichever Lambda log group is shipped; the groups are chosen at run time.",
  );
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      sid: "ListFunctionLabels",
      actions: options.bulk ? ["lambda:ListFunctions", "tag:GetResources"] : ["lambda:ListFunctions"],
      resources: ["*"],
    }),
  );
  acknowledgeServiceWildcard(
    nagScope,
    options.bulk
      ? "lambda:ListFunctions and tag:GetResources support only Resource *."
      : "lambda:ListFunctions supports only Resource *.",
  );
}

/** Whether the functions' `LABEL_*` environment keeps function labels on (the default). */
export function functionLabelsOn(environment: Record<string, string>): boolean {
  return environment.LABEL_LAMBDA_FUNCTION !== "false";
}
