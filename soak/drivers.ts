import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import {
  type CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  FilterLogEventsCommand,
  PutLogEventsCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { S3Client } from "@aws-sdk/client-s3";
import { type LocalWorkflowDeps, runBackfillLocally, runReplayLocally } from "../cli/local-workflow.ts";
import { LogGroupTagCache } from "../functions/core/labels/log-group-tags.ts";
import type { LogEvent } from "../functions/core/log-event.ts";
import { createLokiPushClient } from "../functions/core/loki/loki-target.ts";
import { listKeys } from "../functions/core/storage/run-store.ts";
import type { RunReport } from "../functions/core/workflow/run-report.ts";
import { parseShipperConfig, shipSubscriptionEvent } from "../functions/shipper/ship-subscription.ts";
import { subscriptionEvent } from "../scripts/demo/subscription-payload.ts";
import type { FaultState } from "./faults.ts";
import { type AsyncInvoker, DeadlineExceeded } from "./lambda.ts";
import type { Timeline } from "./timeline.ts";

export const REGION = "eu-central-1";
const ACCOUNT = "123456789012";
const TENANT_TAG = "loki_tenant";
const DEFAULT_TENANT = "team-a";
export const ALLOWED_TENANTS = ["team-a", "team-b"];

/** The soak's log groups: two tenants by tag, the default tenant, and a tenant that is not allowed. */
export const GROUPS = [
  { name: "/soak/app-a", tags: { [TENANT_TAG]: "team-a" }, tenant: "team-a", history: true },
  { name: "/soak/app-b", tags: { [TENANT_TAG]: "team-b" }, tenant: "team-b", history: true },
  { name: "/soak/app-c", tags: {} as Record<string, string>, tenant: DEFAULT_TENANT, history: true },
  // Refused: its events belong in rejected/, never in a Loki tenant. No history: a backfill of it
  // is the third resume gap, which the soak leaves to its own fix.
  { name: "/soak/intruder", tags: { [TENANT_TAG]: "team-x" }, tenant: "team-x", history: false },
];
const STREAMS = ["web-1", "web-2"];
export const HISTORY_HOURS = 3;

/** What the drivers share: moto's clients, the bucket, the shipper's settings and the faults. */
export interface SoakWorld {
  logs: CloudWatchLogsClient;
  lambda: LambdaClient;
  /** The shipper's and workflows' S3 client, with the fault double on it. */
  s3: S3Client;
  bucket: string;
  env: Record<string, string>;
  faults: FaultState;
  timeline: Timeline;
  log: (line: string) => void;
}

export function shipperEnv(bucket: string, lokiUrl: string): Record<string, string> {
  return {
    AWS_REGION: REGION,
    BUCKET_NAME: bucket,
    LOKI_URL: `${lokiUrl}/loki/api/v1/push`,
    LOKI_TENANT: DEFAULT_TENANT,
    LABEL_TENANT_TAG: TENANT_TAG,
    LOKI_TENANTS_ALLOWED: ALLOWED_TENANTS.join(","),
    // Below the proxy's slow answers (3 s): a slow Loki is a timed-out push.
    LOKI_TIMEOUT: "2s",
    SHIPPER_DEADLINE_RESERVE: "1s",
  };
}

export async function createGroups(logs: CloudWatchLogsClient): Promise<void> {
  for (const group of GROUPS) {
    await logs.send(new CreateLogGroupCommand({ logGroupName: group.name }));
    if (Object.keys(group.tags).length > 0) {
      await logs.send(
        new TagResourceCommand({
          resourceArn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${group.name}`,
          tags: group.tags,
        }),
      );
    }
    for (const stream of STREAMS) {
      await logs.send(new CreateLogStreamCommand({ logGroupName: group.name, logStreamName: stream }));
    }
  }
}

/** Two events a minute per stream over the last hours, for the backfill; returns how many. */
export async function writeHistory(logs: CloudWatchLogsClient, until: number): Promise<number> {
  let written = 0;
  for (const group of GROUPS.filter((each) => each.history)) {
    for (const stream of STREAMS) {
      const logEvents: { timestamp: number; message: string }[] = [];
      for (let minute = HISTORY_HOURS * 60; minute > 0; minute--) {
        for (let n = 0; n < 2; n++) {
          const timestamp = until - minute * 60_000 + n * 30_000;
          logEvents.push({ timestamp, message: `soak history ${group.name} ${stream} m=${minute} n=${n}` });
        }
      }
      await logs.send(
        new PutLogEventsCommand({ logGroupName: group.name, logStreamName: stream, logEvents }),
      );
      written += logEvents.length;
    }
  }
  return written;
}

/**
 * The live shipper as Lambda runs it: one invocation per subscription event, with a context whose
 * remaining time is short while a "cutoff" fault is on (the deadline is then at hand). An
 * invocation still running past its deadline counts as timed out, as Lambda would end it; this
 * process cannot stop the promise, which runs on, as a frozen container would not.
 */
export function liveShipper(world: SoakWorld): (event: unknown) => Promise<void> {
  const config = parseShipperConfig(world.env);
  const deps = {
    s3: world.s3,
    logs: world.logs,
    lambda: world.lambda,
    loki: () => createLokiPushClient(config.loki),
    logger: silentLogger(),
    metrics: silentMetrics(),
    tagCache: new LogGroupTagCache(),
    retry: { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 500 },
  };
  return async (event) => {
    const remainingMs = world.faults.cutoff ? config.deadlineReserveMs + 50 : 10_000;
    const end = Date.now() + remainingMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DeadlineExceeded(`timed out after ${remainingMs} ms`)),
        remainingMs,
      );
    });
    try {
      const result = await Promise.race([
        shipSubscriptionEvent(event, { getRemainingTimeInMillis: () => end - Date.now() }, config, deps),
        deadline,
      ]);
      if (result.outcome === "delivered") {
        world.timeline.add("pushed", result.report.pushed);
        world.timeline.add("spilled", result.report.spilled);
      }
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * Writes `perSecond` events a second to each group (spread over its streams) through PutLogEvents,
 * reads their ids back as CloudWatch gave them, and hands each stream's events to the shipper as
 * the subscription would. Returns a function that stops it.
 */
export function startLiveTraffic(
  world: SoakWorld,
  invoker: AsyncInvoker,
  perSecond: number,
): () => Promise<void> {
  let stopped = false;
  let seq = 0;
  const loop = (async () => {
    while (!stopped) {
      const tickStart = Date.now();
      await Promise.all(
        GROUPS.map(async (group) => {
          const from = Date.now();
          for (const [index, stream] of STREAMS.entries()) {
            const count =
              Math.floor(perSecond / STREAMS.length) + (index < perSecond % STREAMS.length ? 1 : 0);
            if (count === 0) continue;
            const logEvents = Array.from({ length: count }, (_, n) => ({
              timestamp: from + n,
              message: `soak live ${group.name} ${stream} seq=${seq++} level=info`,
            }));
            await world.logs.send(
              new PutLogEventsCommand({ logGroupName: group.name, logStreamName: stream, logEvents }),
            );
            const events = await readBack(world.logs, group.name, stream, from, from + count);
            invoker.invoke(subscriptionEvent(group.name, stream, ACCOUNT, events));
          }
        }),
      ).catch((error: Error) => world.log(`live traffic: ${error.message}`));
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1_000 - (Date.now() - tickStart))));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

async function readBack(
  logs: CloudWatchLogsClient,
  logGroupName: string,
  stream: string,
  from: number,
  to: number,
): Promise<LogEvent[]> {
  const page = await logs.send(
    new FilterLogEventsCommand({ logGroupName, logStreamNames: [stream], startTime: from, endTime: to }),
  );
  return (page.events ?? []).map((event) => ({
    id: event.eventId ?? "",
    timestamp: event.timestamp ?? 0,
    message: event.message ?? "",
    logStream: event.logStreamName ?? stream,
  }));
}

function workflowDeps(
  world: SoakWorld,
  flow: "pushed" | "drained",
): [LocalWorkflowDeps, (p: { pushed: number }) => void] {
  let seen = 0;
  return [
    {
      logs: world.logs,
      s3: world.s3,
      bucket: world.bucket,
      env: world.env,
      logger: silentLogger(),
      retryPauseMs: 1_000,
      invocationBudgetMs: 60_000,
    },
    (progress) => {
      world.timeline.add(flow, progress.pushed - seen);
      seen = progress.pushed;
    },
  ];
}

/** A backfill of the groups' history, through the backfill state machine run locally. */
export async function backfill(
  world: SoakWorld,
  runId: string,
  start: number,
  end: number,
): Promise<RunReport> {
  const [deps, onProgress] = workflowDeps(world, "pushed");
  return runBackfillLocally(
    {
      runId,
      logGroupNames: GROUPS.filter((group) => group.history).map((group) => group.name),
      start: new Date(start).toISOString(),
      end: new Date(end).toISOString(),
      ingestionDelaySeconds: 0,
    },
    deps,
    onProgress,
  );
}

/** The scheduled drain: a replay of spill/. */
export async function drain(world: SoakWorld): Promise<RunReport> {
  const [deps, onProgress] = workflowDeps(world, "drained");
  return runReplayLocally({ source: "spill" }, deps, onProgress);
}

export async function spillBacklog(store: { s3: S3Client; bucket: string }): Promise<number> {
  return (await listKeys(store, "spill/")).length;
}

function silentLogger(): Logger {
  return new Logger({ serviceName: "loki-shipper-soak", logLevel: "SILENT" });
}

/** Metrics collected but never printed (EMF lines would flood the soak's output). */
function silentMetrics(): Metrics {
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  return new Metrics({ namespace: "LokiShipperSoak", serviceName: "loki-shipper-soak" });
}
