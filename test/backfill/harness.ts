import { gzipSync } from "node:zlib";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  FilterLogEventsCommand,
  PutLogEventsCommand,
  PutRetentionPolicyCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { DeliveryReport } from "../../functions/core/delivery/deliver.ts";
import { eventNanoseconds } from "../../functions/core/delivery/timestamps.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { createLokiPushClient } from "../../functions/core/loki/loki-target.ts";
import { getChunk } from "../../functions/core/storage/run-store.ts";
import { parseShipperConfig, shipSubscriptionEvent } from "../../functions/shipper/ship-subscription.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import type { TestLoki } from "../helpers/loki.ts";

/** Shared by the backfill and replay tests: seeded log groups in moto, a bucket, Loki read-back. */
export const logs = new CloudWatchLogsClient(awsClientConfig());
export const s3 = new S3Client(awsClientConfig());
export const HOUR = 3_600_000;

export async function createTestBucket(): Promise<string> {
  const bucket = uniqueName("workflow");
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

export interface EventToPut {
  timestamp: number;
  message: string;
  logStream: string;
}

/**
 * Creates a tagged log group holding `events` and returns them as FilterLogEvents shows them
 * (with CloudWatch's event ids, which the deterministic Loki timestamps derive from).
 */
export async function seedLogGroup(
  name: string,
  tags: Record<string, string>,
  events: EventToPut[],
  options: { retentionInDays?: number } = {},
): Promise<LogEvent[]> {
  await logs.send(new CreateLogGroupCommand({ logGroupName: name }));
  await logs.send(
    new TagResourceCommand({
      resourceArn: `arn:aws:logs:${TEST_REGION}:${TEST_ACCOUNT}:log-group:${name}`,
      tags,
    }),
  );
  if (options.retentionInDays) {
    await logs.send(
      new PutRetentionPolicyCommand({ logGroupName: name, retentionInDays: options.retentionInDays }),
    );
  }
  await putEvents(name, events);
  return readGroup(name);
}

export async function putEvents(name: string, events: EventToPut[]): Promise<void> {
  const byStream = new Map<string, EventToPut[]>();
  for (const event of events)
    byStream.set(event.logStream, [...(byStream.get(event.logStream) ?? []), event]);
  for (const [logStreamName, streamEvents] of byStream) {
    await logs
      .send(new CreateLogStreamCommand({ logGroupName: name, logStreamName }))
      .catch((error: Error) => {
        if (error.name !== "ResourceAlreadyExistsException") throw error;
      });
    const sorted = [...streamEvents].sort((a, b) => a.timestamp - b.timestamp);
    for (let offset = 0; offset < sorted.length; offset += 5000) {
      await logs.send(
        new PutLogEventsCommand({
          logGroupName: name,
          logStreamName,
          logEvents: sorted
            .slice(offset, offset + 5000)
            .map(({ timestamp, message }) => ({ timestamp, message })),
        }),
      );
    }
  }
}

export async function readGroup(name: string, startMs?: number, endMs?: number): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await logs.send(
      new FilterLogEventsCommand({
        logGroupName: name,
        ...(startMs !== undefined ? { startTime: startMs } : {}),
        ...(endMs !== undefined ? { endTime: endMs - 1 } : {}),
        nextToken,
      }),
    );
    for (const event of page.events ?? []) {
      events.push({
        id: event.eventId ?? "",
        timestamp: event.timestamp ?? 0,
        message: event.message ?? "",
        logStream: event.logStreamName ?? "",
      });
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** Events spread evenly over `[startMs, endMs)`, on `streams` log streams. */
export function spreadEvents(
  label: string,
  startMs: number,
  endMs: number,
  count: number,
  streams = 2,
): EventToPut[] {
  const step = (endMs - startMs) / count;
  return Array.from({ length: count }, (_, index) => ({
    timestamp: Math.floor(startMs + index * step),
    message: `${label} event ${index} {"level":"info","n":${index}}`,
    logStream: `2026/11/22/[$LATEST]${label}-${index % streams}`,
  }));
}

export function lokiEnv(loki: TestLoki): Record<string, string> {
  return { LOKI_URL: loki.url, LOKI_TENANT: loki.tenant };
}

/** `<ns> <line>` of every event, as Loki must hold it: the identity Loki de-duplicates on. */
export function expectedEntries(events: LogEvent[]): string[] {
  return events.map((event) => `${eventNanoseconds(event.timestamp, event.id)} ${event.message}`).sort();
}

export interface LokiEntry {
  ns: string;
  line: string;
  labels: Record<string, string>;
}

export async function lokiEntries(
  loki: TestLoki,
  selector: string,
  startMs: number,
  endMs: number,
): Promise<LokiEntry[]> {
  const streams = await loki.queryRangeAll(selector, {
    start: BigInt(startMs) * 1_000_000n,
    end: BigInt(endMs) * 1_000_000n,
  });
  return streams.flatMap((stream) =>
    stream.values.map((value) => ({ ns: value[0], line: value[1], labels: stream.stream })),
  );
}

export function entryKeys(entries: LokiEntry[]): string[] {
  return entries.map((entry) => `${entry.ns} ${entry.line}`).sort();
}

export async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Every record of every chunk under a prefix. */
export async function chunkRecords(bucket: string, prefix: string): Promise<LogEvent[]> {
  const records: LogEvent[] = [];
  for (const key of await listKeys(bucket, prefix)) {
    const found = await getChunk({ s3, bucket }, key);
    for (const record of found?.chunk.records ?? []) records.push(record);
  }
  return records;
}

/**
 * Ships events the way the live shipper does: a subscription DATA_MESSAGE per log stream through
 * the shipper's own code (shipSubscriptionEvent), with CloudWatch's event ids.
 */
export async function shipLive(
  logGroup: string,
  events: LogEvent[],
  env: Record<string, string>,
  bucket: string,
  remainingMs = 20_000,
): Promise<DeliveryReport[]> {
  const config = parseShipperConfig({ AWS_REGION: TEST_REGION, BUCKET_NAME: bucket, ...env });
  const deps = {
    s3,
    logs,
    loki: () => createLokiPushClient(config.loki),
    logger: new Logger({ serviceName: "live-shipper-test", logLevel: "SILENT" }),
    metrics: new Metrics({ namespace: "LokiShipperTest", serviceName: "live-shipper-test" }),
    retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
  };
  const byStream = new Map<string, LogEvent[]>();
  for (const event of events)
    byStream.set(event.logStream, [...(byStream.get(event.logStream) ?? []), event]);
  const reports: DeliveryReport[] = [];
  for (const [logStream, streamEvents] of byStream) {
    const payload = {
      messageType: "DATA_MESSAGE",
      owner: TEST_ACCOUNT,
      logGroup,
      logStream,
      subscriptionFilters: ["loki-shipper"],
      logEvents: streamEvents.map(({ id, timestamp, message }) => ({ id, timestamp, message })),
    };
    const end = Date.now() + remainingMs;
    const result = await shipSubscriptionEvent(
      { awslogs: { data: gzipSync(JSON.stringify(payload)).toString("base64") } },
      { getRemainingTimeInMillis: () => end - Date.now() },
      config,
      deps,
    );
    if (result.outcome === "delivered") reports.push(result.report);
  }
  return reports;
}
