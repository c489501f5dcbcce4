import type { Command } from "commander";
import { selectLogGroups } from "../../functions/core/cloudwatch/log-group-registry.ts";
import { InputError } from "../../functions/core/errors.ts";
import { explainLabels, parseLabelOptions } from "../../functions/core/labels/labels.ts";
import { getLogGroupTags, LogGroupTagCache } from "../../functions/core/labels/log-group-tags.ts";
import { createAwsClients } from "../aws.ts";
import { formatTable } from "../output.ts";
import type { CommandContext } from "../program.ts";

/** `labels <log group>`: the labels the group's events would get, and why, without shipping anything. */
export function registerLabels(program: Command, { output, awsOptions }: CommandContext): void {
  program
    .command("labels")
    .description("show the Loki labels a log group's events would get, and why each tag is kept or dropped")
    .argument("<log-group>", "log group name, e.g. /aws/lambda/fun-python")
    .action(async (logGroupName: string) => {
      const { logs, region } = createAwsClients(awsOptions());
      const [group] = await selectLogGroups(logs, { names: [logGroupName] });
      if (!group) {
        throw new InputError(
          `Log group ${logGroupName} does not exist in ${region}: check the name and --region`,
        );
      }
      const accountId = group.arn.split(":")[4] ?? "";
      // Same LABEL_* settings as the shipper's environment; a fresh cache: the CLI wants today's tags.
      const options = parseLabelOptions(process.env);
      const { tags } = await getLogGroupTags(logs, group.arn, { accountId, region }, new LogGroupTagCache());
      const explanation = explainLabels(group.name, tags, options, { accountId, region });

      output.out(`Labels of ${group.name}:`);
      output.out(
        formatTable(
          ["label", "value", "from"],
          [
            ...Object.entries(explanation.labels).map(([name, value]) => [
              name,
              value,
              name in explanation.fixed ? "fixed" : "tag",
            ]),
            ...explanation.perEntryLabels.map((name) => [name, "(per entry)", "shipper"]),
          ],
        ),
      );
      if (explanation.tags.length > 0) {
        output.out("");
        output.out("Tags:");
        output.out(
          formatTable(
            ["tag", "value", "kept", "why"],
            explanation.tags.map((decision) => [
              decision.tag,
              decision.value,
              decision.kept ? `yes, as ${decision.label}` : "no",
              decision.reason,
            ]),
          ),
        );
      } else {
        output.out("The log group has no tags: only the fixed labels apply.");
      }
      if (explanation.structuredMetadata.length > 0) {
        output.out(`Structured metadata per entry: ${explanation.structuredMetadata.join(", ")}`);
      }
      for (const warning of explanation.warnings) output.err(`warning: ${warning}`);
    });
}
