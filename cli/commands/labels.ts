import type { Command } from "commander";
import { REPORT_FIELDS } from "../../functions/core/delivery/lambda-report.ts";
import type { FunctionFacts } from "../../functions/core/labels/function-labels.ts";
import type { LabelExplanation } from "../../functions/core/labels/labels.ts";
import { createAwsClients } from "../aws.ts";
import { groupInAccount } from "../group-account.ts";
import { describeTenant, explainGroup, printRules } from "../group-explanation.ts";
import { formatTable, type Output } from "../output.ts";
import type { CommandContext } from "../program.ts";

/**
 * `labels <log group>`: the labels the group's events would get, and why, and the drop and mask
 * rules that apply to it, without shipping anything.
 */
export function registerLabels(program: Command, { output, awsOptions }: CommandContext): void {
  program
    .command("labels")
    .description(
      "show the Loki labels a log group's events would get, where each comes from (group tag, function tag, function configuration, fixed), why each tag is kept or dropped, the Loki tenant they would go to and why, and the drop and mask rules that apply",
    )
    .argument("<log-group>", "log group name or ARN, e.g. /aws/lambda/fun-python")
    .option("--account <id>", "the account the named group is in, read through its reader role")
    .action(async (logGroupName: string, options: { account?: string }) => {
      const named = await groupInAccount(createAwsClients(awsOptions()), logGroupName, options.account);
      const group = await explainGroup(named.clients, named.logGroup);
      const { labels: explanation, functionName, facts } = group;
      printExplanation(
        output,
        `${group.logGroup}${named.account ? ` in account ${named.account}` : ""}`,
        explanation,
        facts,
      );
      output.out(describeTenant(group));
      if (functionName && facts) output.out(describeFunction(functionName, facts));
      else if (!group.options.functionLabels)
        output.out("Function labels are off (LABEL_LAMBDA_FUNCTION=false).");
      output.out("");
      printRules(output, group);
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
    output.out(`Lambda report lines also carry: ${REPORT_FIELDS.join(", ")}`);
  }
}

function describeFunction(functionName: string, facts: FunctionFacts): string {
  if (!facts.found) return `Function ${functionName} does not exist (any more): no function labels.`;
  const runtime = facts.runtime ? `runtime ${facts.runtime}` : "no runtime (container image)";
  return `Function ${functionName}: ${runtime}, ${Object.keys(facts.tags).length} tag(s).`;
}
