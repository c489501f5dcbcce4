import { partitionOf } from "./log-group-tags.ts";

/**
 * Labels from the Lambda function behind a log group. Lambda writes to `/aws/lambda/<function>`
 * and creates that group itself, untagged, while the teams' IaC tags the function: its tags and
 * its configuration are what the account already knows about the workload.
 */

/** What the shipper knows about the function of a log group (from GetFunction or from listings). */
export interface FunctionFacts {
  /** false when the function does not exist (or no longer does): then it gives no labels. */
  found: boolean;
  tags: Record<string, string>;
  /** `Configuration.Runtime`, e.g. `python3.12`; absent for container-image functions. */
  runtime?: string;
}

export const NO_FUNCTION: FunctionFacts = { found: false, tags: {} };

/** Lambda's function name rule (CreateFunction `FunctionName`, a name and not an ARN). */
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const LAMBDA_LOG_GROUP_PREFIX = "/aws/lambda/";

/**
 * The function whose default log group this is, or undefined. A function that logs to another
 * group (`LoggingConfig.LogGroup`) is found by function-log-groups.ts instead; Lambda@Edge's replica groups
 * (`/aws/lambda/us-east-1.<name>`) are not functions of this region and are skipped too.
 */
export function lambdaFunctionName(logGroup: string): string | undefined {
  if (!logGroup.startsWith(LAMBDA_LOG_GROUP_PREFIX)) return undefined;
  const name = logGroup.slice(LAMBDA_LOG_GROUP_PREFIX.length);
  return FUNCTION_NAME.test(name) ? name : undefined;
}

/** A function's ARN, which GetFunction takes as well as its name, and which names its account and region. */
export function functionArn(functionName: string, context: { accountId: string; region: string }): string {
  return `arn:${partitionOf(context.region)}:lambda:${context.region}:${context.accountId}:function:${functionName}`;
}

/**
 * The runtime's family: `python3.12` → `python`, `nodejs22.x` → `nodejs`, `java21` → `java`,
 * `provided.al2023` → `provided`, `dotnet8` → `dotnet`, `ruby3.3` → `ruby`. The family is a
 * low-cardinality label (a handful of values), where the version would split every query.
 */
export function runtimeFamily(runtime: string): string | undefined {
  return /^[a-z]+/.exec(runtime)?.[0];
}

/**
 * Labels derived from the function's configuration. Only low-cardinality facts: `runtime` (the
 * family). Version, memory size or code hash would multiply the streams for little use.
 */
export function derivedFunctionLabels(facts: FunctionFacts): Record<string, string> {
  if (!facts.found || !facts.runtime) return {};
  const family = runtimeFamily(facts.runtime);
  return family ? { runtime: family } : {};
}

/** The function's part of a group's label sources (labels.ts `LabelSources`). */
export function functionLabelSources(facts: FunctionFacts): {
  functionTags: Record<string, string>;
  functionConfig: Record<string, string>;
} {
  return { functionTags: facts.found ? facts.tags : {}, functionConfig: derivedFunctionLabels(facts) };
}
