import { Logger } from "@aws-lambda-powertools/logger";
import { FilterLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import { type LocalWorkflowDeps, runBackfillLocally, runReplayLocally } from "../cli/local-workflow.ts";
import type { RunReport } from "../functions/core/workflow/run-report.ts";
import { type AwsBed, createTaggedLogGroup, putLogEvents } from "./aws-bed.ts";
import { lambdaLogStreamName, logEvents } from "./payloads.ts";

/**
 * Backfill end to end with the local engine (runBackfillLocally: the backfill state machine in
 * aws-local-stepfunctions, FilterLogEvents from moto into S3 chunks, chunks replayed into Loki),
 * and, in the same run, what moto's FilterLogEvents gives a plain pager, one of its two bounds.
 */

export interface BackfillOptions {
  bed: AwsBed;
  bucket: string;
  pushUrl: string;
  tenant: string;
  events: number;
  lineBytes: number;
  /** Hours of history the events are spread over (ending one hour ago). */
  hours: number;
  runLabel: string;
  /** The request's replay pace (bytes/s overall and per stream); absent: the request's default. */
  pace?: { bytesPerSecond: number; perStreamBytesPerSecond: number };
  /** Further backfill request fields (sliceHours, maxEventsPerChunk...), for trying settings. */
  request?: Record<string, unknown>;
  /** Further settings of the workflow tasks (e.g. `LOKI_SHARD_STREAMS_ENABLED`), over the ones above. */
  extraEnv?: Record<string, string>;
}

export interface PagerResult {
  pages: number;
  events: number;
  seconds: number;
  pagesPerSecond: number;
  eventsPerSecond: number;
}

export interface BackfillResult {
  events: number;
  exported: number;
  pushed: number;
  spilled: number;
  refused: number;
  pages: number;
  throttled: number;
  seconds: number;
  eventsPerSecond: number;
  lineMegabytesPerSecond: number;
  status: string;
}

export async function seedBackfillGroup(
  options: BackfillOptions,
): Promise<{ logGroup: string; startMs: number; endMs: number }> {
  const logGroup = `/aws/lambda/bench-${options.runLabel}-history`;
  await createTaggedLogGroup(options.bed, logGroup, {
    runtime: "python",
    name: "bench-history",
    owner: "team-bench",
    bench_run: options.runLabel,
  });
  const endMs = Date.now() - 3_600_000;
  const startMs = endMs - options.hours * 3_600_000;
  const streams = 4;
  const perStream = Math.ceil(options.events / streams);
  const step = Math.max(1, Math.floor((endMs - startMs) / perStream));
  for (let stream = 0; stream < streams; stream += 1) {
    const events = logEvents(perStream, options.lineBytes, startMs, lambdaLogStreamName(1000 + stream)).map(
      (event, index) => ({ ...event, timestamp: startMs + index * step + stream }),
    );
    await putLogEvents(options.bed, logGroup, events);
  }
  return { logGroup, startMs, endMs };
}

/** Pages through the whole group as fast as moto answers: no budget, no chunks, no Loki. */
export async function measurePager(
  bed: AwsBed,
  logGroup: string,
  startMs: number,
  endMs: number,
): Promise<PagerResult> {
  let pages = 0;
  let events = 0;
  let nextToken: string | undefined;
  const started = performance.now();
  do {
    const page = await bed.logs.send(
      new FilterLogEventsCommand({ logGroupName: logGroup, startTime: startMs, endTime: endMs, nextToken }),
    );
    pages += 1;
    events += page.events?.length ?? 0;
    nextToken = page.nextToken;
  } while (nextToken);
  const seconds = (performance.now() - started) / 1000;
  return { pages, events, seconds, pagesPerSecond: pages / seconds, eventsPerSecond: events / seconds };
}

/** Hooks of the local engine that count what a run uses (bench/cost.ts). */
type UsageHooks = Pick<LocalWorkflowDeps, "onStateEntered" | "wrapTask">;

function localDeps(options: BackfillOptions, usageHooks: UsageHooks): LocalWorkflowDeps {
  return {
    logs: options.bed.logs,
    s3: options.bed.s3,
    bucket: options.bucket,
    env: { LOKI_URL: options.pushUrl, LOKI_TENANT: options.tenant, ...options.extraEnv },
    logger: new Logger({ serviceName: "loki-shipper-bench", logLevel: "SILENT" }),
    ...usageHooks,
  };
}

export async function measureBackfill(
  options: BackfillOptions,
  group: { logGroup: string; startMs: number; endMs: number },
  usageHooks: UsageHooks = {},
): Promise<BackfillResult & { report: RunReport }> {
  const started = performance.now();
  const report = await runBackfillLocally(
    {
      runId: `bench-${options.runLabel}`,
      logGroupNames: [group.logGroup],
      start: new Date(group.startMs).toISOString(),
      end: new Date(group.endMs + 1).toISOString(),
      ingestionDelaySeconds: 0,
      ...(options.pace ?? {}),
      ...(options.request ?? {}),
    },
    localDeps(options, usageHooks),
  );
  const seconds = (performance.now() - started) / 1000;
  const totals = report.totals;
  return {
    events: options.events,
    exported: totals.exported,
    pushed: totals.pushed,
    spilled: totals.spilled,
    refused: Object.values(totals.refused).reduce((sum, count) => sum + count, 0),
    pages: totals.pages,
    throttled: totals.throttled,
    seconds,
    eventsPerSecond: totals.pushed / seconds,
    lineMegabytesPerSecond: (totals.pushed * options.lineBytes) / 1e6 / seconds,
    status: report.status,
    report,
  };
}

/**
 * Replays the chunks of an earlier backfill run again (replay source "run"), as a replay of spill/
 * or rejected/ would: Loki stores the entries once, the S3 reads and state transitions are what
 * a replay of that many chunks costs. Returns the pushed events.
 */
export async function replayRun(
  options: BackfillOptions,
  sourceRunId: string,
  usageHooks: UsageHooks,
): Promise<{ pushed: number; seconds: number }> {
  const started = performance.now();
  const report = await runReplayLocally(
    {
      source: "run",
      sourceRunId: `bench-${sourceRunId}`,
      runId: `bench-${options.runLabel}-replay`,
      ...(options.pace ?? {}),
    },
    localDeps(options, usageHooks),
  );
  return { pushed: report.totals.pushed, seconds: (performance.now() - started) / 1000 };
}
