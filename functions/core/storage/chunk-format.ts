import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { ChunkFormatError } from "../errors.ts";
import { compareEvents, type LogEvent } from "../log-event.ts";

/**
 * The one chunk format of the project: backfill chunks, `spill/` (Loki unreachable),
 * `rejected/` (refused by Loki, with the reason) and `malformed/` all use it, and replay reads it.
 *
 * gzip'd NDJSON: the first line is a {@link ChunkHeader}, every further line one {@link ChunkRecord},
 * sorted by timestamp then event id. NDJSON keeps a chunk readable with `zcat | jq`.
 */
export const CHUNK_FORMAT = "loki-shipper-chunk/1";

export type ChunkKind = "backfill" | "spill" | "rejected" | "malformed";

export interface ChunkHeader {
  format: typeof CHUNK_FORMAT;
  kind: ChunkKind;
  logGroup: string;
  /** Group-level labels resolved when the chunk was written (tag labels and fixed labels). */
  labels: Record<string, string>;
  /**
   * The Loki tenant (`X-Scope-OrgID`) the group's tenant tag chose; a replay pushes the events to it
   * only, after checking the allow list again. Absent (and in chunks of earlier versions): the
   * default tenant (LOKI_TENANT).
   */
  tenant?: string;
  createdAt: string;
  /** Why the events are here rather than in Loki (spill and rejected chunks). */
  reason?: string;
  /** Backfill run and slice that produced the chunk, when there is one. */
  runId?: string;
  /** The AWS account and region of the log group (backfill chunks; absent in earlier versions). */
  account?: string;
  region?: string;
  /**
   * Per-entry label choices the events were shipped with (log stream as a label or as structured
   * metadata), so that a replay puts every event into the very stream it was meant for.
   */
  eventLabels?: { logStreamLabel: boolean; structuredMetadata: boolean };
}

export interface ChunkRecord extends LogEvent {
  /** Loki's own reason for refusing this event (rejected chunks). */
  reason?: string;
}

export interface Chunk {
  header: ChunkHeader;
  records: ChunkRecord[];
}

export function encodeChunk(chunk: Chunk): Buffer {
  const sorted = [...chunk.records].sort(compareEvents);
  const lines = [JSON.stringify(chunk.header), ...sorted.map((record) => JSON.stringify(record))];
  return gzipSync(`${lines.join("\n")}\n`);
}

export function decodeChunk(body: Uint8Array, source = "chunk"): Chunk {
  let text: string;
  try {
    text = gunzipSync(body).toString("utf8");
  } catch (error) {
    throw new ChunkFormatError(`${source} is not gzip data: ${(error as Error).message}`, { cause: error });
  }
  const lines = text.split("\n").filter((line) => line.length > 0);
  const [headerLine, ...recordLines] = lines;
  if (headerLine === undefined) throw new ChunkFormatError(`${source} is empty: expected a header line`);
  const header = parseLine(headerLine, source, 1) as ChunkHeader;
  if (header.format !== CHUNK_FORMAT) {
    throw new ChunkFormatError(
      `${source} has format ${JSON.stringify(header.format)}; this version reads ${CHUNK_FORMAT}`,
    );
  }
  const records = recordLines.map((line, index) => {
    const record = parseLine(line, source, index + 2) as ChunkRecord;
    if (
      typeof record.id !== "string" ||
      typeof record.timestamp !== "number" ||
      typeof record.message !== "string"
    ) {
      throw new ChunkFormatError(
        `${source} line ${index + 2} is not an event record (id, timestamp, message)`,
      );
    }
    return record;
  });
  return { header, records };
}

function parseLine(line: string, source: string, lineNumber: number): unknown {
  try {
    return JSON.parse(line);
  } catch (error) {
    throw new ChunkFormatError(`${source} line ${lineNumber} is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** A log group name as one S3 key segment (names contain `/`). */
export function logGroupKeySegment(logGroup: string): string {
  return encodeURIComponent(logGroup);
}

/**
 * A log group in an AWS account and region. Without them (runs planned by earlier versions), the
 * group is in the functions' own account and region.
 */
export interface GroupRef {
  logGroup: string;
  account?: string;
  region?: string;
}

/**
 * A log group with its account and region as one S3 key segment, `<account>:<region>:<name>`
 * encoded: the same name in two accounts gets two segments. Log group names hold no `:`, so the
 * segment reads back unambiguously ({@link groupOfKeySegment}).
 */
export function groupKeySegment(group: GroupRef): string {
  return logGroupKeySegment(
    group.account ? `${group.account}:${group.region}:${group.logGroup}` : group.logGroup,
  );
}

export function groupOfKeySegment(segment: string): GroupRef {
  const decoded = decodeURIComponent(segment);
  const [account, region, logGroup] = decoded.split(":");
  return logGroup !== undefined && region !== undefined && account !== undefined
    ? { logGroup, account, region }
    : { logGroup: decoded };
}

/** How a report or message names a group: `<name>` or `<name> (<account> <region>)`. */
export function describeGroup(group: GroupRef): string {
  return group.account ? `${group.logGroup} (${group.account} ${group.region})` : group.logGroup;
}

/**
 * Key of a spill, rejected or malformed chunk: `<kind>/<group>/<first timestamp, zero padded>-<hash>.ndjson.gz`.
 * Keys sort by time within a group, so a replay lists them in order; the content hash makes a
 * retried write of the same chunk land on the same key instead of a second copy.
 */
export function eventChunkKey(kind: Exclude<ChunkKind, "backfill">, chunk: Chunk): string {
  const first = chunk.records.reduce(
    (min, record) => Math.min(min, record.timestamp),
    Number.POSITIVE_INFINITY,
  );
  const firstPart = Number.isFinite(first) ? String(first).padStart(15, "0") : "000000000000000";
  const hash = createHash("sha256");
  for (const record of [...chunk.records].sort(compareEvents)) hash.update(`${record.id}\n`);
  hash.update(chunk.header.reason ?? "");
  return `${kind}/${logGroupKeySegment(chunk.header.logGroup)}/${firstPart}-${hash.digest("hex").slice(0, 16)}.ndjson.gz`;
}
