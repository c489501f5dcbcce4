import type { S3Client } from "@aws-sdk/client-s3";
import type { EventLabelOptions } from "../labels/labels.ts";
import { SpillError } from "../loki/loki-errors.ts";
import {
  CHUNK_FORMAT,
  type ChunkHeader,
  type ChunkKind,
  type ChunkRecord,
  encodeChunk,
  eventChunkKey,
} from "../storage/chunk-format.ts";

export interface EventChunkToKeep {
  kind: Exclude<ChunkKind, "backfill">;
  logGroup: string;
  labels: Record<string, string>;
  /** The group's own Loki tenant; undefined: the default one. */
  tenant?: string;
  reason: string;
  records: ChunkRecord[];
  runId?: string;
  eventLabels?: EventLabelOptions;
}

/**
 * Writes events that are not (or not yet) in Loki to S3 in the chunk format, under
 * `spill/`, `rejected/` or `malformed/`. The key comes from the content, so writing the same
 * chunk again (a retried invocation) replaces it instead of adding a copy. Throws SpillError
 * when S3 fails: the caller must then fail the invocation rather than lose the events.
 */
export async function keepEventChunk(
  s3: S3Client,
  bucket: string,
  chunk: EventChunkToKeep,
  now: () => number = Date.now,
): Promise<string> {
  const header: ChunkHeader = {
    format: CHUNK_FORMAT,
    kind: chunk.kind,
    logGroup: chunk.logGroup,
    labels: chunk.labels,
    ...(chunk.tenant ? { tenant: chunk.tenant } : {}),
    createdAt: new Date(now()).toISOString(),
    reason: chunk.reason,
    ...(chunk.runId ? { runId: chunk.runId } : {}),
    ...(chunk.eventLabels ? { eventLabels: chunk.eventLabels } : {}),
  };
  const body = { header, records: chunk.records };
  const key = eventChunkKey(chunk.kind, body);
  try {
    // Loaded here, not at import: the live shipper needs S3 only when Loki does not take everything.
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: encodeChunk(body),
        // Stored as gzip bytes, not with Content-Encoding: readers must get the chunk as written.
        ContentType: "application/gzip",
      }),
    );
  } catch (error) {
    throw new SpillError(
      `Could not keep ${chunk.records.length} ${chunk.kind} event(s) of ${chunk.logGroup} in s3://${bucket}/${key}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return key;
}
