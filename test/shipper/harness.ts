import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { LogGroupTagCache } from "../../functions/core/labels/log-group-tags.ts";
import { createLokiPushClient } from "../../functions/core/loki/loki-target.ts";
import { type Chunk, decodeChunk } from "../../functions/core/storage/chunk-format.ts";
import {
  parseShipperConfig,
  type ShipperConfig,
  type ShipperDeps,
} from "../../functions/shipper/ship-subscription.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import { queryRangeAll } from "../helpers/loki.ts";

/** Shared setup of the shipper's integration tests: moto (S3, CloudWatch Logs) and the Loki test server. */

export const s3 = new S3Client(awsClientConfig());
export const logs = new CloudWatchLogsClient(awsClientConfig());

export async function createBucket(): Promise<string> {
  const bucket = uniqueName("shipper-test");
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      CreateBucketConfiguration: { LocationConstraint: TEST_REGION },
    }),
  );
  return bucket;
}

export async function createTaggedLogGroup(prefix: string, tags: Record<string, string>): Promise<string> {
  const name = `/aws/lambda/${uniqueName(prefix)}`;
  await logs.send(new CreateLogGroupCommand({ logGroupName: name }));
  await logs.send(
    new TagResourceCommand({
      resourceArn: `arn:aws:logs:${TEST_REGION}:${TEST_ACCOUNT}:log-group:${name}`,
      tags,
    }),
  );
  return name;
}

/** The shipper's environment for one test tenant (a short deadline reserve keeps drills quick). */
export function shipperEnv(
  target: { bucket: string; lokiUrl: string; tenant: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    BUCKET_NAME: target.bucket,
    LOKI_URL: target.lokiUrl,
    LOKI_TENANT: target.tenant,
    SHIPPER_DEADLINE_RESERVE: "1s",
    ...extra,
  };
}

export function shipperConfig(env: Record<string, string>): ShipperConfig {
  return parseShipperConfig({ AWS_REGION: TEST_REGION, ...env });
}

export function shipperDeps(config: ShipperConfig, overrides: Partial<ShipperDeps> = {}): ShipperDeps {
  return {
    s3,
    logs,
    loki: () => createLokiPushClient(config.loki),
    logger: new Logger({ serviceName: "shipper-test", logLevel: "SILENT" }),
    metrics: quietMetrics(),
    tagCache: new LogGroupTagCache(),
    retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 200 },
    ...overrides,
  };
}

/** Metrics that are collected but not printed (EMF output would flood the test log). */
function quietMetrics(): Metrics {
  const previous = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  try {
    return new Metrics({ namespace: "LokiShipperTest", serviceName: "shipper-test" });
  } finally {
    if (previous === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = previous;
  }
}

export function lambdaContext(remainingMs = 30_000) {
  const end = Date.now() + remainingMs;
  return { getRemainingTimeInMillis: () => end - Date.now() };
}

export interface QueriedEntry {
  ns: bigint;
  line: string;
  labels: Record<string, string>;
}

/** Every entry matching `selector`, oldest first (pages over Loki's entries limit). */
export async function queryAll(
  lokiUrl: string,
  tenant: string,
  selector: string,
  startMs: number,
  endMs: number,
): Promise<QueriedEntry[]> {
  const streams = await queryRangeAll(lokiUrl, tenant, selector, {
    start: BigInt(startMs) * 1_000_000n,
    end: BigInt(endMs) * 1_000_000n,
  });
  return streams
    .flatMap((stream) => stream.values.map(([ns, line]) => ({ ns: BigInt(ns), line, labels: stream.stream })))
    .sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
}

export async function readChunks(bucket: string, prefix: string): Promise<{ key: string; chunk: Chunk }[]> {
  const chunks: { key: string; chunk: Chunk }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) {
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: object.Key }));
      chunks.push({
        key: object.Key as string,
        chunk: decodeChunk(
          await (body.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
          object.Key,
        ),
      });
    }
    token = page.NextContinuationToken;
  } while (token);
  return chunks;
}

export function tenantName(prefix: string): string {
  return uniqueName(prefix);
}
