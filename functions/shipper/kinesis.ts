import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from "aws-lambda";
import { forEachLimited } from "../core/delivery/deliver.ts";
import {
  type InvocationContext,
  keepMalformed,
  type ShipperConfig,
  type ShipperDeps,
  shipMessage,
} from "./ship-subscription.ts";
import { type DataMessage, decodeSubscriptionData, MalformedPayloadError } from "./subscription.ts";

/**
 * A central Kinesis Data Stream fed by CloudWatch Logs destinations in many accounts: each record's
 * data is the gzip'd, base64'd payload a direct subscription delivers (`awslogs.data`), so each goes
 * the same way (labels, Loki, spill to S3). With `ReportBatchItemFailures` on the event source
 * mapping, the answer names the records that are neither in Loki nor in S3; Lambda retries from the
 * lowest of them, and the records after it come again: shipping is idempotent (Loki stores an
 * identical entry once), so they are stored once.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
 */

/** Log groups shipped at once; a group's records go one after another, in stream order. */
export const KINESIS_GROUP_CONCURRENCY = 4;

/** A Kinesis event source mapping's event (rather than a CloudWatch Logs subscription's). */
export function isKinesisEvent(event: unknown): event is KinesisStreamEvent {
  const records = (event as { Records?: unknown } | null)?.Records;
  return Array.isArray(records) && (records[0] as { eventSource?: unknown })?.eventSource === "aws:kinesis";
}

interface DecodedRecord {
  sequenceNumber: string;
  message: DataMessage;
}

/**
 * Ships every record of a batch. Malformed records go to `malformed/` and CONTROL_MESSAGE records
 * are skipped; neither fails. A record fails when shipping it rejects: S3 failed too, or its
 * tenant cannot be known (TenantLookupError).
 */
export async function shipKinesisEvent(
  event: KinesisStreamEvent,
  context: InvocationContext,
  config: ShipperConfig,
  deps: ShipperDeps,
): Promise<KinesisStreamBatchResponse> {
  const failed: string[] = [];
  const byGroup = new Map<string, DecodedRecord[]>();
  for (const [index, record] of event.Records.entries()) {
    const sequenceNumber = record.kinesis?.sequenceNumber ?? "";
    try {
      const decoded = await decodeRecord(record, index, config, deps);
      if (!decoded) continue;
      const key = `${decoded.owner}/${decoded.logGroup}`;
      byGroup.set(key, [...(byGroup.get(key) ?? []), { sequenceNumber, message: decoded }]);
    } catch (error) {
      failed.push(recordFailed(sequenceNumber, error, deps));
    }
  }
  await forEachLimited([...byGroup.values()], KINESIS_GROUP_CONCURRENCY, async (records) => {
    for (const { sequenceNumber, message } of records) {
      try {
        await shipMessage(message, context, config, deps);
      } catch (error) {
        failed.push(recordFailed(sequenceNumber, error, deps));
      }
    }
  });
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

/** The record's DATA_MESSAGE; undefined for a CONTROL_MESSAGE or a malformed record (kept in S3). */
async function decodeRecord(
  record: KinesisStreamRecord,
  index: number,
  config: ShipperConfig,
  deps: ShipperDeps,
): Promise<DataMessage | undefined> {
  const data: unknown = record.kinesis?.data;
  try {
    const message = decodeSubscriptionData(data, `Records[${index}].kinesis.data`);
    if (message.messageType === "DATA_MESSAGE") return message;
    deps.logger.info("ignoring CONTROL_MESSAGE (sent when a subscription filter is created)");
    return undefined;
  } catch (error) {
    if (!(error instanceof MalformedPayloadError)) throw error;
    await keepMalformed(typeof data === "string" ? data : JSON.stringify(record), error, config, deps);
    return undefined;
  }
}

function recordFailed(sequenceNumber: string, error: unknown, deps: ShipperDeps): string {
  deps.logger.error("Kinesis record neither in Loki nor in S3; Lambda retries it from this sequence number", {
    sequenceNumber,
    error: (error as Error).name,
    message: (error as Error).message,
  });
  return sequenceNumber;
}
