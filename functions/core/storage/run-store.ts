import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { type Chunk, decodeChunk, encodeChunk } from "./chunk-format.ts";

/**
 * Where a run keeps its state in the bucket (`runs/<runId>/...`): the plan, its parts, chunks,
 * checkpoints and the report. Only S3 keys travel through the state machine, never data: a
 * Step Functions payload is limited to 256 KiB.
 */
export const runKeys = {
  plan: (runId: string) => `runs/${runId}/plan.json`,
  group: (runId: string, groupSegment: string) => `runs/${runId}/groups/${groupSegment}.json`,
  part: (runId: string, partIndex: number) =>
    `runs/${runId}/parts/${String(partIndex).padStart(5, "0")}.json`,
  sliceChunks: (runId: string, groupSegment: string, sliceId: string) =>
    `runs/${runId}/chunks/${groupSegment}/${sliceId}/`,
  chunk: (runId: string, groupSegment: string, sliceId: string, seq: number) =>
    `runs/${runId}/chunks/${groupSegment}/${sliceId}/${String(seq).padStart(6, "0")}.ndjson.gz`,
  exportCheckpoint: (runId: string, groupSegment: string, sliceId: string) =>
    `runs/${runId}/checkpoints/export/${groupSegment}/${sliceId}.json`,
  replayCheckpoints: (runId: string) => `runs/${runId}/checkpoints/replay/`,
  exportCheckpoints: (runId: string) => `runs/${runId}/checkpoints/export/`,
  replayCheckpoint: (runId: string, unitId: string) => `runs/${runId}/checkpoints/replay/${unitId}.json`,
  report: (runId: string) => `runs/${runId}/report.json`,
};

export interface Store {
  s3: S3Client;
  bucket: string;
}

export async function getJson<T>(store: Store, key: string): Promise<T | undefined> {
  try {
    const answer = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
    const text = await answer.Body?.transformToString("utf8");
    return text === undefined ? undefined : (JSON.parse(text) as T);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function putJson(store: Store, key: string, value: unknown): Promise<void> {
  await store.s3.send(
    new PutObjectCommand({
      Bucket: store.bucket,
      Key: key,
      Body: JSON.stringify(value),
      ContentType: "application/json",
    }),
  );
}

export async function putChunk(store: Store, key: string, chunk: Chunk): Promise<number> {
  const body = encodeChunk(chunk);
  await store.s3.send(
    new PutObjectCommand({
      Bucket: store.bucket,
      Key: key,
      Body: body,
      ContentType: "application/x-ndjson",
      ContentEncoding: "gzip",
    }),
  );
  return body.length;
}

export async function getChunk(
  store: Store,
  key: string,
): Promise<{ chunk: Chunk; size: number } | undefined> {
  try {
    const answer = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
    const body = await answer.Body?.transformToByteArray();
    if (!body) return undefined;
    return { chunk: decodeChunk(body, `s3://${store.bucket}/${key}`), size: body.length };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** The pages of one ListObjectsV2 listing, following its continuation tokens. */
async function* listPages(
  store: Store,
  listing: { prefix: string; delimiter?: string; startAfter?: string },
): AsyncGenerator<ListObjectsV2CommandOutput> {
  let continuationToken: string | undefined;
  do {
    const page = await store.s3.send(
      new ListObjectsV2Command({
        Bucket: store.bucket,
        Prefix: listing.prefix,
        ...(listing.delimiter ? { Delimiter: listing.delimiter } : {}),
        ...(continuationToken ? { ContinuationToken: continuationToken } : {}),
        ...(listing.startAfter && !continuationToken ? { StartAfter: listing.startAfter } : {}),
      }),
    );
    yield page;
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken);
}

/** Every key under a prefix, in S3's (lexicographic) order. */
export async function listKeys(store: Store, prefix: string, startAfter?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listPages(store, { prefix, ...(startAfter ? { startAfter } : {}) })) {
    for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
  }
  return keys.sort();
}

/** The first-level "folders" under a prefix (e.g. the log groups under `spill/`). */
export async function listPrefixes(store: Store, prefix: string): Promise<string[]> {
  const prefixes: string[] = [];
  for await (const page of listPages(store, { prefix, delimiter: "/" })) {
    for (const item of page.CommonPrefixes ?? []) if (item.Prefix) prefixes.push(item.Prefix);
  }
  return prefixes.sort();
}

export async function deleteKeys(store: Store, keys: string[]): Promise<void> {
  for (let start = 0; start < keys.length; start += 1000) {
    const batch = keys.slice(start, start + 1000);
    if (batch.length === 1) {
      await store.s3.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: batch[0] }));
      continue;
    }
    await store.s3.send(
      new DeleteObjectsCommand({
        Bucket: store.bucket,
        Delete: { Objects: batch.map((key) => ({ Key: key })), Quiet: true },
      }),
    );
  }
}

export function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return name === "NoSuchKey" || name === "NotFound" || status === 404;
}

export function isPreconditionFailed(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return name === "PreconditionFailed" || status === 412;
}
