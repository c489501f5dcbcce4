import { DescribeExecutionCommand, StartExecutionCommand } from "@aws-sdk/client-sfn";
import type { Command } from "commander";
import { ConfigError } from "../../functions/core/errors.ts";
import { parseBackfillRequest } from "../../functions/core/workflow/backfill-request.ts";
import { parseReplayRequest } from "../../functions/core/workflow/replay-plan.ts";
import type { RunReport } from "../../functions/core/workflow/run-report.ts";
import { createAwsClients } from "../aws.ts";
import { RunPartialError } from "../errors.ts";
import type { CommandContext } from "../program.ts";
import { createProgressDisplay } from "../progress.ts";
import { printRunReport } from "../report.ts";
import { readRunProgress } from "../run-progress.ts";

/** Where a run goes: this machine (`--local`) or the deployed state machine. */
interface TargetOptions {
  local?: boolean;
  bucket?: string;
  stateMachineArn?: string;
  lokiUrl?: string;
  lokiTenant?: string;
  runId?: string;
  wait: boolean;
}

interface BackfillOptions extends TargetOptions {
  logGroup?: string[];
  account?: string;
  accountRegion?: string;
  prefix?: string;
  tagSelector?: string;
  since?: string;
  range?: string;
  start?: string;
  end?: string;
  filterPattern?: string;
  logStreamPrefix?: string;
  sliceHours?: number;
  concurrency?: number;
  requestsPerSecond?: number;
  bytesPerSecond?: number;
  perStreamBytesPerSecond?: number;
  dryRun?: boolean;
  includeRefusedTenants?: boolean;
}

interface ReplayOptions extends TargetOptions {
  source: string;
  run?: string;
  logGroup?: string[];
  bytesPerSecond?: number;
  perStreamBytesPerSecond?: number;
  concurrency?: number;
}

const POLL_INTERVAL_MS = 5_000;
const LOCAL_NODE_MAJOR = 22;

/**
 * `--local` runs the state machines with aws-local-stepfunctions, which needs Node.js 22: it is
 * loaded only for `--local`, so that every other command runs on Node.js 20 too.
 */
export async function loadLocalWorkflow(nodeVersion = process.versions.node) {
  if (Number(nodeVersion.split(".")[0]) < LOCAL_NODE_MAJOR) {
    throw new ConfigError(
      `--local needs Node.js ${LOCAL_NODE_MAJOR} or later (aws-local-stepfunctions runs the state machines); this is Node.js ${nodeVersion}: run it with Node.js ${LOCAL_NODE_MAJOR}, or without --local to run in AWS`,
    );
  }
  return import("../local-workflow.ts");
}

function addTargetOptions(command: Command, kind: "backfill" | "replay"): Command {
  const envName = kind === "backfill" ? "LOKI_SHIPPER_BACKFILL_ARN" : "LOKI_SHIPPER_REPLAY_ARN";
  return command
    .option("--local", "run the state machine on this machine (aws-local-stepfunctions) instead of in AWS")
    .option("--bucket <name>", "the shipper's S3 bucket (default: LOKI_SHIPPER_BUCKET)")
    .option("--state-machine-arn <arn>", `state machine to start in AWS (default: ${envName})`)
    .option("--loki-url <url>", "Loki push URL for this run (default: LOKI_URL)")
    .option("--loki-tenant <tenant>", "Loki tenant, X-Scope-OrgID (default: LOKI_TENANT)")
    .option("--run-id <id>", "name of the run; the same id resumes a stopped run")
    .option("--no-wait", "start the run in AWS and print its execution ARN without waiting");
}

const number = (text: string) => Number(text);

export function registerWorkflows(program: Command, context: CommandContext): void {
  addTargetOptions(
    program
      .command("backfill")
      .description("copy a time range of log groups from CloudWatch into Loki, with their tag labels")
      .option("--log-group <name...>", "log group names or ARNs (an ARN names its account and region)")
      .option(
        "--account <id>",
        "the account of the named groups, prefix or tag selector (read through its reader role)",
      )
      .option("--account-region <region>", "their region (default: the functions' own)")
      .option("--prefix <prefix>", "log group name prefix")
      .option("--tag-selector <selector>", 'tag matchers, e.g. team=payments or runtime=~"python.*"')
      .option("--since <age>", "from that long ago until now, e.g. 7d, 36h, 90m")
      .option("--range <start..end>", "a range, e.g. 2026-11-01..2026-11-08 or 3d..1d")
      .option("--start <time>", "start (ISO timestamp, date or age)")
      .option("--end <time>", "end (default: now)")
      .option("--filter-pattern <pattern>", "CloudWatch Logs filter pattern")
      .option("--log-stream-prefix <prefix>", "only log streams whose name starts with this")
      .option("--slice-hours <n>", "hours per export slice (default 1)", number)
      .option("--concurrency <n>", "slices exported at once (default 4)", number)
      .option("--requests-per-second <n>", "FilterLogEvents budget shared by all slices (default 4)", number)
      .option("--bytes-per-second <n>", "replay pace into Loki for the whole run (default 2 MiB/s)", number)
      .option("--per-stream-bytes-per-second <n>", "replay pace per stream (default 1 MiB/s)", number)
      .option("--dry-run", "plan only: list the log groups and slices, export nothing")
      .option(
        "--include-refused-tenants",
        "also export groups whose tenant tag names a tenant outside LOKI_TENANTS_ALLOWED (their events go to rejected/)",
      ),
    "backfill",
  ).action((options: BackfillOptions) => runBackfill(options, context));

  addTargetOptions(
    program
      .command("replay")
      .description(
        "replay kept events into Loki: spill (Loki was down), rejected (after raising limits) or a backfill run",
      )
      .requiredOption("--source <source>", "spill, rejected or run")
      .option("--run <run-id>", "the backfill run to replay (with --source run)")
      .option("--log-group <name...>", "only these log groups")
      .option("--bytes-per-second <n>", "pace for the whole replay (the tenant's ingestion rate)", number)
      .option("--per-stream-bytes-per-second <n>", "pace per stream", number)
      .option("--concurrency <n>", "log groups replayed at once", number),
    "replay",
  ).action((options: ReplayOptions) => runReplay(options, context));
}

function lokiOverrides(options: TargetOptions): Record<string, string> {
  return {
    ...(options.lokiUrl ? { LOKI_URL: options.lokiUrl } : {}),
    ...(options.lokiTenant ? { LOKI_TENANT: options.lokiTenant } : {}),
  };
}

async function runBackfill(options: BackfillOptions, context: CommandContext): Promise<void> {
  const request = {
    ...(options.runId ? { runId: options.runId } : {}),
    ...(options.logGroup ? { logGroupNames: options.logGroup } : {}),
    ...(options.account ? { account: options.account } : {}),
    ...(options.accountRegion ? { region: options.accountRegion } : {}),
    ...(options.prefix ? { logGroupNamePrefix: options.prefix } : {}),
    ...(options.tagSelector ? { tagSelector: options.tagSelector } : {}),
    ...(options.since ? { range: options.since } : {}),
    ...(options.range ? { range: options.range } : {}),
    ...(options.start ? { start: options.start } : {}),
    ...(options.end ? { end: options.end } : {}),
    ...(options.filterPattern ? { filterPattern: options.filterPattern } : {}),
    ...(options.logStreamPrefix ? { logStreamNamePrefix: options.logStreamPrefix } : {}),
    ...(options.sliceHours !== undefined ? { sliceHours: options.sliceHours } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.requestsPerSecond !== undefined ? { requestsPerSecond: options.requestsPerSecond } : {}),
    ...(options.bytesPerSecond !== undefined ? { bytesPerSecond: options.bytesPerSecond } : {}),
    ...(options.perStreamBytesPerSecond !== undefined
      ? { perStreamBytesPerSecond: options.perStreamBytesPerSecond }
      : {}),
    ...(options.dryRun ? { dryRun: true } : {}),
    ...(options.includeRefusedTenants ? { includeRefusedTenants: true } : {}),
    ...(Object.keys(lokiOverrides(options)).length > 0 ? { loki: lokiOverrides(options) } : {}),
  };
  // Refuse bad input here, before anything starts in AWS or locally.
  parseBackfillRequest(request);
  await runWorkflow("backfill", request, options, context);
}

async function runReplay(options: ReplayOptions, context: CommandContext): Promise<void> {
  const request = {
    source: options.source,
    ...(options.runId ? { runId: options.runId } : {}),
    ...(options.run ? { sourceRunId: options.run } : {}),
    ...(options.logGroup ? { logGroupNames: options.logGroup } : {}),
    ...(options.bytesPerSecond !== undefined ? { bytesPerSecond: options.bytesPerSecond } : {}),
    ...(options.perStreamBytesPerSecond !== undefined
      ? { perStreamBytesPerSecond: options.perStreamBytesPerSecond }
      : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(Object.keys(lokiOverrides(options)).length > 0 ? { loki: lokiOverrides(options) } : {}),
  };
  parseReplayRequest(request);
  await runWorkflow("replay", request, options, context);
}

async function runWorkflow(
  kind: "backfill" | "replay",
  request: Record<string, unknown>,
  options: TargetOptions,
  context: CommandContext,
): Promise<void> {
  // Before anything else, so that an older Node gets its one line and nothing more.
  const localWorkflow = options.local ? await loadLocalWorkflow() : undefined;
  const clients = createAwsClients(context.awsOptions());
  if (localWorkflow) await runLocally(kind, request, options, context, { ...clients, ...localWorkflow });
  else await runInAws(kind, request, options, context, clients);
}

/** What a run's progress counts: a backfill's plan is made of slices, a replay's of log groups. */
const UNIT = { backfill: "slices", replay: "log groups" } as const;

type LocalWorkflow = Awaited<ReturnType<typeof loadLocalWorkflow>>;
type AwsClients = ReturnType<typeof createAwsClients>;

async function runLocally(
  kind: "backfill" | "replay",
  request: Record<string, unknown>,
  options: TargetOptions,
  context: CommandContext,
  local: AwsClients & LocalWorkflow,
): Promise<void> {
  const bucket = options.bucket ?? process.env.LOKI_SHIPPER_BUCKET;
  if (!bucket) {
    throw new ConfigError(
      "No bucket given for the run's chunks and reports: pass --bucket or set LOKI_SHIPPER_BUCKET",
    );
  }
  const env = { ...process.env, ...lokiOverrides(options) };
  if (!env.LOKI_URL) {
    throw new ConfigError("No Loki URL given: pass --loki-url (e.g. http://127.0.0.1:3100) or set LOKI_URL");
  }
  const progress = createProgressDisplay(context.output, kind, { unit: UNIT[kind] });
  const run = kind === "backfill" ? local.runBackfillLocally : local.runReplayLocally;
  try {
    const report = await run(request, { logs: local.logs, s3: local.s3, bucket, env }, (p) =>
      progress.update(p),
    );
    progress.stop();
    finishReport(context, report);
  } catch (error) {
    progress.stop();
    throw error;
  }
}

async function runInAws(
  kind: "backfill" | "replay",
  request: Record<string, unknown>,
  options: TargetOptions,
  context: CommandContext,
  clients: AwsClients,
): Promise<void> {
  const { output } = context;
  const envName = kind === "backfill" ? "LOKI_SHIPPER_BACKFILL_ARN" : "LOKI_SHIPPER_REPLAY_ARN";
  const stateMachineArn = options.stateMachineArn ?? process.env[envName];
  if (!stateMachineArn) {
    throw new ConfigError(
      `No state machine given: pass --state-machine-arn or set ${envName} (a stack output), or run on this machine with --local`,
    );
  }
  const started = await clients.sfn.send(
    new StartExecutionCommand({
      stateMachineArn,
      ...(options.runId ? { name: options.runId } : {}),
      input: JSON.stringify(request),
    }),
  );
  output.out(`Started ${kind}: ${started.executionArn}`);
  if (!options.wait) return;
  // The run id is the execution's name; its checkpoints in the bucket give the progress.
  const bucket = options.bucket ?? process.env.LOKI_SHIPPER_BUCKET;
  const runId = options.runId ?? started.executionArn?.split(":").at(-1) ?? "";
  const store = bucket ? { s3: clients.s3, bucket } : undefined;
  if (!store)
    output.out("Set LOKI_SHIPPER_BUCKET (or --bucket) to see the run's progress from its checkpoints.");
  const progress = createProgressDisplay(output, kind, { unit: UNIT[kind] });
  for (;;) {
    const execution = await clients.sfn.send(
      new DescribeExecutionCommand({ executionArn: started.executionArn }),
    );
    const stored = store ? await readRunProgress(store, runId) : undefined;
    if (stored) progress.update(stored.progress);
    if (execution.status !== "RUNNING") {
      progress.stop();
      if (execution.status === "SUCCEEDED" && execution.output) {
        finishReport(context, JSON.parse(execution.output) as RunReport);
        return;
      }
      throw new Error(
        `The ${kind} execution ended ${execution.status}${execution.error ? `: ${execution.error} ${execution.cause ?? ""}` : ""}; see ${started.executionArn}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

function finishReport(context: CommandContext, report: RunReport): void {
  printRunReport(context.output, report);
  if (report.status === "partial") {
    throw new RunPartialError(
      `The run ${report.runId} is partial: ${report.totals.spilled + report.totals.held} event(s) wait in spill/ and ${refusedCount(report)} in rejected/; the hints above say when and how they go in`,
    );
  }
  if (report.status === "failed" || report.status === "incomplete") {
    throw new Error(
      `The run ${report.runId} is ${report.status}: run the same command with --run-id ${report.runId} to resume it`,
    );
  }
}

function refusedCount(report: RunReport): number {
  return Object.values(report.totals.refused).reduce((sum, count) => sum + count, 0);
}
