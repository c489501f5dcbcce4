import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { selectLogGroups } from "../functions/core/cloudwatch/log-group-registry.ts";
import { RuleSet } from "../functions/core/delivery/rules.ts";
import { InputError } from "../functions/core/errors.ts";
import { type FunctionFacts, functionLabelSources } from "../functions/core/labels/function-labels.ts";
import { CustomLogGroupCache, functionOfLogGroup } from "../functions/core/labels/function-log-groups.ts";
import { FunctionFactsCache, getFunctionFacts } from "../functions/core/labels/function-lookup.ts";
import {
  explainLabels,
  type LabelExplanation,
  type LabelOptions,
  type LabelSources,
  parseLabelOptions,
} from "../functions/core/labels/labels.ts";
import { getLogGroupTags, LogGroupTagCache } from "../functions/core/labels/log-group-tags.ts";
import { formatTable, type Output } from "./output.ts";

/** What the shipper would make of a log group's events: its labels and the rules that apply. */
export interface GroupExplanation {
  logGroup: string;
  options: LabelOptions;
  labels: LabelExplanation;
  /** LOKI_TENANT: where a group without a tenant tag goes. */
  defaultTenant?: string;
  /** The Lambda function behind the group, when function labels are on and it is one. */
  functionName?: string;
  facts?: FunctionFacts;
  rules: RuleSet;
}

/**
 * Reads the group's tags (and its function's) and the shipper's settings (`LABEL_*`, `LOG_RULES`)
 * from this process's environment, as the shipper reads its own; a bad setting is a ConfigError
 * listing every mistake.
 */
export async function explainGroup(
  clients: { logs: CloudWatchLogsClient; lambda: LambdaClient; region: string },
  logGroupName: string,
): Promise<GroupExplanation> {
  const { logs, lambda, region } = clients;
  const options = parseLabelOptions(process.env);
  const rules = RuleSet.fromJson(process.env.LOG_RULES);
  const [group] = await selectLogGroups(logs, { names: [logGroupName] });
  if (!group) {
    throw new InputError(
      `Log group ${logGroupName} does not exist in ${region}: check the name and --region`,
    );
  }
  const accountId = group.arn.split(":")[4] ?? "";
  // Fresh caches: the CLI wants today's tags.
  const { tags } = await getLogGroupTags(logs, group.arn, { accountId, region }, new LogGroupTagCache());
  const sources: LabelSources = { groupTags: tags };
  const functionName = options.functionLabels
    ? await functionOfLogGroup(lambda, group.name, new CustomLogGroupCache())
    : undefined;
  let facts: FunctionFacts | undefined;
  if (functionName) {
    facts = await getFunctionFacts(lambda, functionName, new FunctionFactsCache());
    Object.assign(sources, functionLabelSources(facts));
  }
  return {
    logGroup: group.name,
    options,
    labels: explainLabels(group.name, sources, options, { accountId, region }),
    ...(process.env.LOKI_TENANT ? { defaultTenant: process.env.LOKI_TENANT } : {}),
    ...(functionName ? { functionName } : {}),
    ...(facts ? { facts } : {}),
    rules,
  };
}

/** The rules that apply to the group, in order, with the number "dropped by rule N" refers to. */
export function printRules(output: Output, explanation: GroupExplanation): void {
  const rules = explanation.rules.describe(explanation.logGroup);
  if (rules.length === 0) {
    output.out("Rules: none apply (LOG_RULES)");
    return;
  }
  output.out("Rules that apply, in order (LOG_RULES):");
  output.out(
    formatTable(
      ["rule", "action", "only for log groups"],
      rules.map((rule) => [`rule ${rule.number}`, rule.description, rule.logGroups ?? "all"]),
    ),
  );
}

/** The tenant the group's events would go to, and why: its tag, the default, or refused. */
export function describeTenant(explanation: GroupExplanation): string {
  const { tenant: choice } = explanation.labels;
  const { defaultTenant, options } = explanation;
  const routing = options.tenants;
  const fallback = defaultTenant
    ? `the default tenant ${JSON.stringify(defaultTenant)} (LOKI_TENANT)`
    : "no X-Scope-OrgID (LOKI_TENANT is not set)";
  switch (choice.kind) {
    case "default":
      return routing.tagKey
        ? `Loki tenant: ${fallback}: neither the group nor its function has the tag ${JSON.stringify(routing.tagKey)}.`
        : `Loki tenant: ${fallback}; tenant routing is off (LABEL_TENANT_TAG is not set).`;
    case "tag":
      return `Loki tenant: ${JSON.stringify(choice.tenant)}, from the ${choice.source} ${JSON.stringify(routing.tagKey)} (allowed by LOKI_TENANTS_ALLOWED).`;
    case "refused":
      return `Loki tenant: none, refused: the ${choice.source} ${JSON.stringify(routing.tagKey)} names ${JSON.stringify(choice.tenant)}; its events would go to rejected/. ${choice.reason}`;
  }
}
