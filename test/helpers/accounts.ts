import { randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  PutRecordCommand,
} from "@aws-sdk/client-kinesis";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { KinesisStreamEvent } from "aws-lambda";
import { stsAssumeRole } from "../../functions/core/accounts/source-accounts.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION } from "./aws.ts";
import { groupBy } from "./log-groups.ts";

/**
 * Other AWS accounts in moto, and the central Kinesis stream their logs reach. moto serves an
 * account to the credentials its sts:AssumeRole returns for a role ARN in that account; it checks
 * neither that the role exists nor whom it trusts.
 */

/** Client settings for `region` of `accountId` (the default account's own credentials for TEST_ACCOUNT). */
export async function accountClientConfig(accountId: string, region: string) {
  const base = { ...awsClientConfig(), region };
  if (accountId === TEST_ACCOUNT) return base;
  const assume = stsAssumeRole(TEST_REGION, awsClientConfig());
  const { accessKeyId, secretAccessKey, sessionToken } = await assume(
    `arn:aws:iam::${accountId}:role/test-setup`,
    "test-setup",
  );
  return {
    ...base,
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
  };
}

/** The CloudWatch Logs and Lambda clients of an account and region in moto. */
export async function accountClients(accountId: string, region: string) {
  const config = await accountClientConfig(accountId, region);
  return { config, logs: new CloudWatchLogsClient(config), lambda: new LambdaClient(config) };
}

/** Creates a log group in the account of `logs` with `tags` (none: untagged, as Lambda creates one). */
export async function createAccountLogGroup(
  logs: CloudWatchLogsClient,
  name: string,
  where: { accountId: string; region: string },
  tags: Record<string, string> = {},
): Promise<void> {
  await logs.send(new CreateLogGroupCommand({ logGroupName: name }));
  if (Object.keys(tags).length === 0) return;
  const resourceArn = `arn:aws:logs:${where.region}:${where.accountId}:log-group:${name}`;
  await logs.send(new TagResourceCommand({ resourceArn, tags }));
}

/**
 * The payloads a CloudWatch Logs destination writes into its Kinesis stream for these events of a
 * log group: one gzip'd DATA_MESSAGE per log stream, naming the source account and the filter.
 */
export function destinationPayloads(
  message: { owner: string; logGroup: string; filterName: string },
  events: LogEvent[],
): Buffer[] {
  return [...groupBy(events, (event) => event.logStream)].map(([logStream, streamEvents]) =>
    gzipSync(
      JSON.stringify({
        messageType: "DATA_MESSAGE",
        owner: message.owner,
        logGroup: message.logGroup,
        logStream,
        subscriptionFilters: [message.filterName],
        logEvents: streamEvents.map(({ id, timestamp, message: text }) => ({ id, timestamp, message: text })),
      }),
    ),
  );
}

/** A one-shard Kinesis stream in the central (default) account of moto. */
export class CentralStream {
  // moto speaks HTTP/1.1; the Kinesis client's default handler is HTTP/2 (for SubscribeToShard).
  readonly #kinesis = new KinesisClient({ ...awsClientConfig(), requestHandler: new NodeHttpHandler() });
  readonly #name: string;
  #iterator: string | undefined;

  constructor(name: string) {
    this.#name = name;
  }

  async create(): Promise<void> {
    await this.#kinesis.send(new CreateStreamCommand({ StreamName: this.#name, ShardCount: 1 }));
  }

  async put(payloads: Buffer[]): Promise<void> {
    for (const data of payloads)
      await this.#kinesis.send(
        new PutRecordCommand({ StreamName: this.#name, PartitionKey: randomUUID(), Data: data }),
      );
  }

  /**
   * The records put since the last read, as the Kinesis event Lambda's event source mapping
   * builds from GetRecords (data base64'd again, sequence numbers as strings).
   */
  async nextBatch(): Promise<KinesisStreamEvent> {
    const stream = (await this.#kinesis.send(new DescribeStreamCommand({ StreamName: this.#name })))
      .StreamDescription;
    const shardId = stream?.Shards?.[0]?.ShardId ?? "shardId-000000000000";
    this.#iterator ??= (
      await this.#kinesis.send(
        new GetShardIteratorCommand({
          StreamName: this.#name,
          ShardId: shardId,
          ShardIteratorType: "TRIM_HORIZON",
        }),
      )
    ).ShardIterator;
    const page = await this.#kinesis.send(new GetRecordsCommand({ ShardIterator: this.#iterator }));
    this.#iterator = page.NextShardIterator;
    return {
      Records: (page.Records ?? []).map((record) => ({
        eventSource: "aws:kinesis",
        eventSourceARN: stream?.StreamARN ?? "",
        eventID: `${shardId}:${record.SequenceNumber}`,
        eventName: "aws:kinesis:record",
        eventVersion: "1.0",
        invokeIdentityArn: `arn:aws:iam::${TEST_ACCOUNT}:role/loki-shipper`,
        awsRegion: TEST_REGION,
        kinesis: {
          kinesisSchemaVersion: "1.0",
          partitionKey: record.PartitionKey ?? "",
          sequenceNumber: record.SequenceNumber ?? "",
          data: Buffer.from(record.Data ?? new Uint8Array()).toString("base64"),
          approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
        },
      })),
    };
  }
}
