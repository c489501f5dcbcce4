import { DescribeExecutionCommand } from "@aws-sdk/client-sfn";
import type { Command } from "commander";
import { ConfigError, InputError } from "../../functions/core/errors.ts";
import { getJson, listPrefixes, runKeys, type Store } from "../../functions/core/storage/run-store.ts";
import type { RunReport } from "../../functions/core/workflow/run-report.ts";
import { createAwsClients } from "../aws.ts";
import { formatTable, type Output } from "../output.ts";
import type { CommandContext } from "../program.ts";
import { describeProgress } from "../progress.ts";
import { printRunReport } from "../report.ts";
import { readRunProgress } from "../run-progress.ts";

interface BucketOption {
  bucket?: string;
}

function bucketOf(options: BucketOption): string {
  const bucket = options.bucket ?? process.env.LOKI_SHIPPER_BUCKET;
  if (!bucket) throw new ConfigError("No bucket given: pass --bucket or set LOKI_SHIPPER_BUCKET");
  return bucket;
}

/** `status <run>` and `runs`: what past and running backfills and replays did. */
export function registerRuns(program: Command, { output, awsOptions }: CommandContext): void {
  program
    .command("status")
    .description("show the report of a run (by run id) or the state of an execution (by execution ARN)")
    .argument("<run>", "run id or Step Functions execution ARN")
    .option("--bucket <name>", "the shipper's S3 bucket (default: LOKI_SHIPPER_BUCKET)")
    .action(async (run: string, options: BucketOption) => {
      const clients = createAwsClients(awsOptions());
      if (run.startsWith("arn:")) {
        const execution = await clients.sfn.send(new DescribeExecutionCommand({ executionArn: run }));
        output.out(`Execution ${execution.name}: ${execution.status}`);
        if (execution.output) printRunReport(output, JSON.parse(execution.output) as RunReport);
        if (execution.error) output.out(`error: ${execution.error} ${execution.cause ?? ""}`);
        const bucket = options.bucket ?? process.env.LOKI_SHIPPER_BUCKET;
        if (execution.status === "RUNNING" && bucket && execution.name)
          await printStoredProgress(output, { s3: clients.s3, bucket }, execution.name);
        return;
      }
      const store = { s3: clients.s3, bucket: bucketOf(options) };
      const report = await getJson<RunReport>(store, runKeys.report(run));
      if (report) return printRunReport(output, report);
      const heading = `Run ${run}: running, or stopped (no report yet; the same --run-id resumes it)`;
      if (!(await printStoredProgress(output, store, run, heading))) {
        throw new InputError(`No run ${run} in ${store.bucket}: list the runs with "loki-shipper runs"`);
      }
    });

  program
    .command("runs")
    .description("list the backfill and replay runs kept in the bucket, with their status")
    .option("--bucket <name>", "the shipper's S3 bucket (default: LOKI_SHIPPER_BUCKET)")
    .action(async (options: BucketOption) => {
      const { s3 } = createAwsClients(awsOptions());
      const store = { s3, bucket: bucketOf(options) };
      const prefixes = await listPrefixes(store, "runs/");
      const rows: (string | number)[][] = [];
      for (const prefix of prefixes) {
        const runId = prefix.replace(/^runs\//, "").replace(/\/$/, "");
        const report = await getJson<RunReport>(store, runKeys.report(runId));
        rows.push([
          runId,
          report?.kind ?? "-",
          report?.status ?? "running or stopped",
          report?.finishedAt ?? "-",
          report ? report.totals.pushed : "-",
        ]);
      }
      if (rows.length === 0) {
        output.out("No runs yet.");
        return;
      }
      output.out(formatTable(["run", "kind", "status", "finished", "pushed"], rows));
    });
}

/** A run's progress from its checkpoints in S3; false when the run has no plan there. */
async function printStoredProgress(
  output: Output,
  store: Store,
  runId: string,
  heading?: string,
): Promise<boolean> {
  const stored = await readRunProgress(store, runId);
  if (!stored) return false;
  if (heading) output.out(heading);
  const elapsedMs = stored.startedAt === undefined ? 0 : Date.now() - stored.startedAt;
  output.out(describeProgress(runId, stored.unit, stored.progress, elapsedMs));
  return true;
}
