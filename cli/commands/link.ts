import type { Command } from "commander";
import {
  applyPlan,
  describePlan,
  LOG_GROUP_NOT_FOUND,
  type LogGroupSelection,
  planLink,
  planUnlink,
  type SubscriptionTarget,
} from "../../functions/core/cloudwatch/log-group-registry.ts";
import { ConfigError, InputError } from "../../functions/core/errors.ts";
import { createAwsClients } from "../aws.ts";
import type { CommandContext } from "../program.ts";

interface LinkOptions {
  logGroup?: string[];
  prefix?: string[];
  tagSelector?: string;
  functionArn?: string;
  filterName: string;
  filterPattern?: string;
  tag?: string[];
  exclude?: string[];
  dryRun?: boolean;
}

/** `link` / `unlink`: subscribe log groups to the shipper, or remove that subscription. */
export function registerLink(program: Command, context: CommandContext): void {
  for (const operation of ["link", "unlink"] as const) {
    program
      .command(operation)
      .description(
        operation === "link"
          ? "subscribe log groups to the shipper Lambda (by name, prefix or tag selector)"
          : "remove the shipper's subscription filter from log groups",
      )
      .option("--log-group <name...>", "log group names")
      .option("--prefix <prefix...>", "log group name prefixes")
      .option("--tag-selector <selector>", 'tag matchers, e.g. runtime=python,owner=~"team-.*"')
      .option("--function-arn <arn>", "ARN of the shipper Lambda (default: LOKI_SHIPPER_FUNCTION_ARN)")
      .option("--filter-name <name>", "name of the subscription filter this tool owns", "loki-shipper")
      .option("--filter-pattern <pattern>", "CloudWatch Logs filter pattern (default: every event)")
      .option("--tag <key=value...>", "tags to set on the linked log groups (link only)")
      .option(
        "--exclude <log-group...>",
        "log groups never to link: the pipeline's own (default: LOKI_SHIPPER_OWN_LOG_GROUPS, the stack's OwnLogGroups output)",
      )
      .option("--dry-run", "show what would change, change nothing")
      .action((options: LinkOptions) => runLink(operation, options, context));
  }
}

async function runLink(operation: "link" | "unlink", options: LinkOptions, context: CommandContext) {
  const { output } = context;
  const selection: LogGroupSelection = {
    ...(options.logGroup ? { names: options.logGroup } : {}),
    ...(options.prefix ? { prefixes: options.prefix } : {}),
    ...(options.tagSelector ? { tagSelector: options.tagSelector } : {}),
  };
  if (!options.logGroup && !options.prefix && !options.tagSelector) {
    throw new InputError(`Choose log groups to ${operation}: give --log-group, --prefix or --tag-selector`);
  }
  const destinationArn = options.functionArn ?? process.env.LOKI_SHIPPER_FUNCTION_ARN;
  if (!destinationArn) {
    throw new ConfigError(
      "No shipper Lambda given: pass --function-arn or set LOKI_SHIPPER_FUNCTION_ARN (the stack's ShipperFunctionArn output)",
    );
  }
  if (operation === "unlink" && options.tag) throw new InputError("--tag goes with link only");
  const target: SubscriptionTarget = {
    destinationArn,
    filterName: options.filterName,
    ...(options.filterPattern !== undefined ? { filterPattern: options.filterPattern } : {}),
  };
  const { logs } = createAwsClients(context.awsOptions());
  // Subscribing the pipeline's own log groups would ship its logs into itself, in a loop.
  const excludedLogGroups =
    options.exclude ?? (process.env.LOKI_SHIPPER_OWN_LOG_GROUPS ?? "").split(",").filter(Boolean);
  const plan =
    operation === "link"
      ? await planLink(logs, selection, target, {
          excludedLogGroups,
          ...(options.tag ? { tags: parseTags(options.tag) } : {}),
        })
      : await planUnlink(logs, selection, target);
  if (plan.changes.length === 0)
    throw new InputError(`No log group matches the selection: nothing to ${operation}`);
  const missing = plan.changes.filter((change) => change.reason === LOG_GROUP_NOT_FOUND);
  if (missing.length > 0) {
    throw new InputError(
      `Log group ${missing.map((change) => change.logGroup).join(", ")} not found: check the name and --region; nothing was changed`,
    );
  }

  output.out(options.dryRun ? `Dry run: what ${operation} would do` : `${operation}:`);
  for (const line of describePlan(plan)) output.out(`  ${line}`);
  if (options.dryRun) return;

  const outcome = await applyPlan(logs, plan);
  output.out(`${outcome.applied.length} changed, ${outcome.failed.length} failed`);
  if (outcome.failed.length > 0) {
    for (const failure of outcome.failed) output.err(`error: ${failure.error}`);
    throw new Error(`${outcome.failed.length} log group(s) could not be changed; see the lines above`);
  }
}

function parseTags(pairs: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const separator = pair.indexOf("=");
    if (separator <= 0) throw new InputError(`Cannot read tag ${JSON.stringify(pair)}: expected key=value`);
    tags[pair.slice(0, separator)] = pair.slice(separator + 1);
  }
  return tags;
}
