import type { Command } from "commander";
import { selectLogGroups } from "../../functions/core/cloudwatch/log-group-registry.ts";
import { InputError } from "../../functions/core/errors.ts";
import {
  type FunctionFacts,
  functionLabelSources,
  lambdaFunctionName,
} from "../../functions/core/labels/function-labels.ts";
import { FunctionFactsCache, getFunctionFacts } from "../../functions/core/labels/function-lookup.ts";
import {
  explainLabels,
  type LabelExplanation,
  type LabelSources,
  parseLabelOptions,
} from "../../functions/core/labels/labels.ts";
import { getLogGroupTags, LogGroupTagCache } from "../../functions/core/labels/log-group-tags.ts";
import { createAwsClients } from "../aws.ts";
import { formatTable, type Output } from "../output.ts";
import type { CommandContext } from "../program.ts";

/** `labels <log group>`: the labels the group's events would get, and why, without shipping anything. */
export function registerLabels(program: Command, { output, awsOptions }: CommandContext): void {
  program
    .command("labels")
    .description(
      "show the Loki labels a log group's events would get, where each comes from (group tag, function tag, function configuration, fixed), and why each tag is kept or dropped",
    )
    .argument("<log-group>", "log group name, e.g. /aws/lambda/fun-python")
    .action(async (logGroupName: string) => {
      const { logs, lambda, region } = createAwsClients(awsOptions());
      const [group] = await selectLogGroups(logs, { names: [logGroupName] });
      if (!group) {
        throw new InputError(
          `Log group ${logGroupName} does not exist in ${region}: check the name and --region`,
        );
      }
      const accountId = group.arn.split(":")[4] ?? "";
      // Same LABEL_* settings as the shipper's environment; fresh caches: the CLI wants today's tags.
      const options = parseLabelOptions(process.env);
      const { tags } = await getLogGroupTags(logs, group.arn, { accountId, region }, new LogGroupTagCache());
      const sources: LabelSources = { groupTags: tags };
      const functionName = options.functionLabels ? lambdaFunctionName(group.name) : undefined;
      let facts: FunctionFacts | undefined;
      if (functionName) {
        facts = await getFunctionFacts(lambda, functionName, new FunctionFactsCache());
        Object.assign(sources, functionLabelSources(facts));
      }
      const explanation = explainLabels(group.name, sources, options, { accountId, region });
      printExplanation(output, group.name, explanation, facts);
      if (functionName && facts) output.out(describeFunction(functionName, facts));
      else if (!options.functionLabels) output.out("Function labels are off (LABEL_LAMBDA_FUNCTION=false).");
      for (const warning of explanation.warnings) output.err(`warning: ${warning}`);
    });
}

function printExplanation(
  output: Output,
  logGroup: string,
  explanation: LabelExplanation,
  facts: FunctionFacts | undefined,
): void {
  output.out(`Labels of ${logGroup}:`);
  const originOf = (label: string): string => {
    const source = explanation.sources[label] ?? "fixed";
    if (source === "fixed") return "fixed";
    const decision = explanation.tags.find((tag) => tag.kept && tag.label === label);
    if (source === "function configuration") return `function configuration (Runtime ${facts?.runtime})`;
    return `${source} ${JSON.stringify(decision?.tag ?? label)}`;
  };
  output.out(
    formatTable(
      ["label", "value", "from"],
      [
        ...Object.entries(explanation.labels).map(([name, value]) => [name, value, originOf(name)]),
        ...explanation.perEntryLabels.map((name) => [name, "(per entry)", "shipper"]),
      ],
    ),
  );
  if (explanation.tags.length > 0) {
    output.out("");
    output.out("Tags and derived labels:");
    output.out(
      formatTable(
        ["source", "tag", "value", "kept", "why"],
        explanation.tags.map((decision) => [
          decision.source,
          decision.tag,
          decision.value,
          decision.kept ? `yes, as ${decision.label}` : "no",
          decision.reason,
        ]),
      ),
    );
  } else {
    output.out("No tags: only the fixed labels apply.");
  }
  if (explanation.structuredMetadata.length > 0) {
    output.out(`Structured metadata per entry: ${explanation.structuredMetadata.join(", ")}`);
  }
}

function describeFunction(functionName: string, facts: FunctionFacts): string {
  if (!facts.found) return `Function ${functionName} does not exist (any more): no function labels.`;
  const runtime = facts.runtime ? `runtime ${facts.runtime}` : "no runtime (container image)";
  return `Function ${functionName}: ${runtime}, ${Object.keys(facts.tags).length} tag(s).`;
}
