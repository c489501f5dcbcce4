import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  PutLogEventsCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { LogEvent } from "../functions/core/log-event.ts";

/** moto's AWS, reached through the real SDK clients, as the tests and the demo do. */
export const REGION = "eu-central-1";
export const ACCOUNT = "123456789012";

export interface AwsBed {
  endpoint: string;
  logs: CloudWatchLogsClient;
  lambda: LambdaClient;
  s3: S3Client;
  /** Environment for code that builds its own clients (child processes). */
  env: Record<string, string>;
}

export function awsBed(endpoint: string): AwsBed {
  const config = {
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  };
  return {
    endpoint,
    logs: new CloudWatchLogsClient(config),
    lambda: new LambdaClient(config),
    s3: new S3Client(config),
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
    },
  };
}

export async function createBucket(bed: AwsBed, bucket: string): Promise<void> {
  await bed.s3.send(
    new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }),
  );
}

export async function createTaggedLogGroup(
  bed: AwsBed,
  logGroupName: string,
  tags: Record<string, string>,
): Promise<void> {
  await bed.logs.send(new CreateLogGroupCommand({ logGroupName }));
  await bed.logs.send(
    new TagResourceCommand({
      resourceArn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${logGroupName}`,
      tags,
    }),
  );
}

/** Writes events (one log stream each, sorted) in PutLogEvents calls of at most 10,000 events / 1 MB. */
export async function putLogEvents(bed: AwsBed, logGroupName: string, events: LogEvent[]): Promise<void> {
  const byStream = new Map<string, LogEvent[]>();
  for (const event of events) {
    const list = byStream.get(event.logStream);
    if (list) list.push(event);
    else byStream.set(event.logStream, [event]);
  }
  for (const [logStreamName, streamEvents] of byStream) {
    await bed.logs.send(new CreateLogStreamCommand({ logGroupName, logStreamName }));
    let call: { timestamp: number; message: string }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (call.length === 0) return;
      await bed.logs.send(new PutLogEventsCommand({ logGroupName, logStreamName, logEvents: call }));
      call = [];
      bytes = 0;
    };
    for (const event of streamEvents) {
      const size = Buffer.byteLength(event.message) + 26;
      if (call.length >= 10_000 || bytes + size > 1_000_000) await flush();
      call.push({ timestamp: event.timestamp, message: event.message });
      bytes += size;
    }
    await flush();
  }
}
