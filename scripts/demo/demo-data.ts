import {
  type CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  FilterLogEventsCommand,
  PutLogEventsCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { S3Client } from "@aws-sdk/client-s3";
import { runBackfillLocally } from "../../cli/local-workflow.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { createLokiPushClient } from "../../functions/core/loki/loki-target.ts";
import type { RunReport } from "../../functions/core/workflow/run-report.ts";
import { createObservability } from "../../functions/shipper/observability.ts";
import { parseShipperConfig, shipSubscriptionEvent } from "../../functions/shipper/ship-subscription.ts";
import { createMotoFunction } from "../moto-functions.ts";
import { SAMPLE_FUNCTIONS, type SampleFunction } from "./sample-functions.ts";
import { subscriptionEvent } from "./subscription-payload.ts";

/**
 * The demo's data: the tagged sample functions and their untagged log groups (labels come from
 * the functions' tags and runtime) with a day of history, backfilled
 * through the backfill state machine, and new invocations shipped through the live shipper.
 * Used by `npm run demo` and by the dashboard test, which runs its queries on this data.
 */

export const REGION = "eu-central-1";
export const ACCOUNT = "123456789012";
export const HISTORY_HOURS = 24;
const LOG_STREAM = "2026/11/25/[$LATEST]0123456789abcdef";

export interface DemoTarget {
  logs: CloudWatchLogsClient;
  lambda: LambdaClient;
  s3: S3Client;
  bucket: string;
  /** The shipper's settings (BUCKET_NAME, LOKI_URL, LOKI_TENANT, AWS_REGION...). */
  env: Record<string, string | undefined>;
}

/** Creates the sample functions and their log groups and writes their history; returns the events written per group. */
export async function seedSampleHistory(
  logs: CloudWatchLogsClient,
  aws: { endpoint: string; region: string },
  until: number,
): Promise<Map<string, number>> {
  const written = new Map<string, number>();
  for (const sample of SAMPLE_FUNCTIONS) {
    await createSampleFunction(logs, aws, sample);
    written.set(sample.logGroupName, await writeHistory(logs, sample, until));
  }
  return written;
}

/** Backfills the history through the backfill state machine, run locally. */
export function backfillHistory(target: DemoTarget, demoStart: number): Promise<RunReport> {
  return runBackfillLocally(
    {
      logGroupNamePrefix: "/aws/lambda/fun-",
      start: new Date(demoStart - (HISTORY_HOURS + 1) * 3_600_000).toISOString(),
      end: new Date(demoStart).toISOString(),
      // The history was just written: there is no CloudWatch ingestion delay to wait for.
      ingestionDelaySeconds: 0,
    },
    { logs: target.logs, s3: target.s3, bucket: target.bucket, env: target.env },
  );
}

/**
 * Plays CloudWatch's subscription: each call writes an invocation per sample function and hands
 * every event not handed over yet to the shipper, once. Resolves to the events Loki accepted.
 */
export function liveShipper(target: DemoTarget, demoStart: number): () => Promise<number> {
  const config = parseShipperConfig(target.env);
  const { logger, metrics } = createObservability("loki-shipper-demo");
  const { logs, lambda, s3 } = target;
  const handedOver = new Set<string>();
  return async () => {
    let shipped = 0;
    for (const sample of SAMPLE_FUNCTIONS) {
      await writeInvocation(logs, sample, Date.now());
      const events = (await readEvents(logs, sample.logGroupName, demoStart)).filter(
        (event) => !handedOver.has(event.id),
      );
      if (events.length === 0) continue;
      for (const event of events) handedOver.add(event.id);
      const result = await shipSubscriptionEvent(
        subscriptionEvent(sample.logGroupName, LOG_STREAM, ACCOUNT, events),
        { getRemainingTimeInMillis: () => 60_000 },
        config,
        { s3, logs, lambda, loki: () => createLokiPushClient(config.loki), logger, metrics },
      );
      if (result.outcome === "delivered") shipped += result.report.pushed;
    }
    return shipped;
  };
}

/** The tagged function and its log group, created untagged as Lambda creates it. */
async function createSampleFunction(
  logs: CloudWatchLogsClient,
  aws: { endpoint: string; region: string },
  sample: SampleFunction,
): Promise<void> {
  await createMotoFunction(aws, { name: sample.functionName, runtime: sample.runtime, tags: sample.tags });
  await logs.send(new CreateLogGroupCommand({ logGroupName: sample.logGroupName }));
  await logs.send(
    new CreateLogStreamCommand({ logGroupName: sample.logGroupName, logStreamName: LOG_STREAM }),
  );
}

/** One invocation a minute over the last day, as the demo stack's schedule would have produced. */
async function writeHistory(
  logs: CloudWatchLogsClient,
  sample: SampleFunction,
  until: number,
): Promise<number> {
  const events: { timestamp: number; message: string }[] = [];
  for (let minute = HISTORY_HOURS * 60; minute > 0; minute -= 1) {
    const invokedAt = until - minute * 60_000;
    sample.invocationLines(invokedAt).forEach((message, index) => {
      events.push({ timestamp: invokedAt + index, message });
    });
  }
  // PutLogEvents takes at most 10,000 events and 1 MB per call.
  for (let offset = 0; offset < events.length; offset += 2_000) {
    await logs.send(
      new PutLogEventsCommand({
        logGroupName: sample.logGroupName,
        logStreamName: LOG_STREAM,
        logEvents: events.slice(offset, offset + 2_000),
      }),
    );
  }
  return events.length;
}

async function writeInvocation(
  logs: CloudWatchLogsClient,
  sample: SampleFunction,
  at: number,
): Promise<void> {
  const logEvents = sample.invocationLines(at).map((message, index) => ({ timestamp: at + index, message }));
  await logs.send(
    new PutLogEventsCommand({ logGroupName: sample.logGroupName, logStreamName: LOG_STREAM, logEvents }),
  );
}

/** How many events the log group holds from `since` on: what the demo wrote there, and shipped. */
export async function countEvents(
  logs: CloudWatchLogsClient,
  logGroupName: string,
  since: number,
): Promise<number> {
  return (await readEvents(logs, logGroupName, since)).length;
}

/** The events written since `since`, with the ids CloudWatch gave them. */
async function readEvents(
  logs: CloudWatchLogsClient,
  logGroupName: string,
  since: number,
): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await logs.send(new FilterLogEventsCommand({ logGroupName, startTime: since, nextToken }));
    for (const event of page.events ?? []) {
      events.push({
        id: event.eventId ?? "",
        timestamp: event.timestamp ?? 0,
        message: event.message ?? "",
        logStream: event.logStreamName ?? LOG_STREAM,
      });
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}
