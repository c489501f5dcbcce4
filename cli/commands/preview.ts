import { FilterLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import type { Command } from "commander";
import { buildStreams, type TrackedEntry } from "../../functions/core/delivery/batching.ts";
import { InputError } from "../../functions/core/errors.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { parseTimePoint } from "../../functions/core/workflow/time-range.ts";
import { createAwsClients } from "../aws.ts";
import { groupInAccount } from "../group-account.ts";
import { describeTenant, explainGroup, type GroupExplanation, printRules } from "../group-explanation.ts";
import type { Output } from "../output.ts";
import type { CommandContext } from "../program.ts";

interface PreviewOptions {
  since: string;
  limit: string;
  account?: string;
}

/** FilterLogEvents returns at most 10,000 events per page. */
const MAX_SAMPLE = 10_000;

/**
 * `preview <log group>`: a sample of the group's recent events as the shipper would ship them
 * (labels, structured metadata, the masked line) or "dropped by rule N". Nothing is sent.
 */
export function registerPreview(program: Command, { output, awsOptions }: CommandContext): void {
  program
    .command("preview")
    .description("print a sample of a log group's recent events as they would be shipped; nothing is sent")
    .argument("<log-group>", "log group name or ARN, e.g. /aws/lambda/fun-python")
    .option("--account <id>", "the account the named group is in, read through its reader role")
    .option("--since <age>", "how far back to read, e.g. 1h, 30m, 2d", "1h")
    .option("--limit <count>", "events to show (the oldest of the window)", "20")
    .action(async (logGroupName: string, options: PreviewOptions) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SAMPLE) {
        throw new InputError(`--limit must be a whole number from 1 to ${MAX_SAMPLE}, got ${options.limit}`);
      }
      const now = Date.now();
      const startMs = parseTimePoint(options.since, now, "--since");
      const named = await groupInAccount(createAwsClients(awsOptions()), logGroupName, options.account);
      const group = await explainGroup(named.clients, named.logGroup);
      const { logs } = named.clients;
      if (named.account) output.out(`${group.logGroup} in account ${named.account}`);
      const page = await logs.send(
        new FilterLogEventsCommand({ logGroupName: group.logGroup, startTime: startMs, endTime: now, limit }),
      );
      const events: LogEvent[] = (page.events ?? []).map((event) => ({
        id: event.eventId ?? "",
        timestamp: event.timestamp ?? 0,
        message: event.message ?? "",
        logStream: event.logStreamName ?? "",
      }));
      output.out(describeTenant(group));
      printRules(output, group);
      output.out("");
      if (events.length === 0) {
        output.out(`No events in ${group.logGroup} since ${new Date(startMs).toISOString()}.`);
        return;
      }
      printPreview(output, group, events);
    });
}

function printPreview(output: Output, group: GroupExplanation, events: LogEvent[]): void {
  const droppedBy = new Map<string, number>();
  const kept: LogEvent[] = [];
  for (const event of events) {
    const outcome = group.rules.apply(group.logGroup, event);
    if ("event" in outcome) kept.push(outcome.event);
    else droppedBy.set(event.id, outcome.droppedBy);
  }
  const { labels, eventLabels } = group.labels;
  const entries = new Map<string, { entry: TrackedEntry; labels: Record<string, string> }>();
  for (const stream of buildStreams([{ logGroup: group.logGroup, labels, events: kept, eventLabels }])) {
    for (const entry of stream.entries) entries.set(entry.event.id, { entry, labels: stream.labels });
  }
  for (const event of events) {
    const when = new Date(event.timestamp).toISOString();
    const shipped = entries.get(event.id);
    if (!shipped) {
      output.out(`${when}  dropped by rule ${droppedBy.get(event.id)}`);
      continue;
    }
    output.out(`${when}  ${formatLabels(shipped.labels)}`);
    const metadata = shipped.entry.metadata ?? [];
    if (metadata.length > 0)
      output.out(`  metadata: ${metadata.map(([name, value]) => `${name}=${value}`).join(" ")}`);
    output.out(`  line: ${shipped.entry.line.trimEnd()}`);
  }
  output.out("");
  output.out(
    `${events.length} event(s): ${kept.length} would be shipped, ${droppedBy.size} dropped. Nothing was sent.`,
  );
}

function formatLabels(labels: Record<string, string>): string {
  const pairs = Object.keys(labels)
    .sort()
    .map((name) => `${name}=${JSON.stringify(labels[name])}`);
  return `{${pairs.join(", ")}}`;
}
