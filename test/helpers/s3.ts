import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { Chunk, ChunkKind, ChunkRecord } from "../../functions/core/storage/chunk-format.ts";
import { logGroupKeySegment } from "../../functions/core/storage/chunk-format.ts";
import { getChunk, listKeys as listStoreKeys } from "../../functions/core/storage/run-store.ts";
import { awsClientConfig, TEST_REGION, uniqueName } from "./aws.ts";

/** The S3 client every test shares (moto's server, see aws.ts). */
export const s3 = new S3Client(awsClientConfig());

export async function createTestBucket(): Promise<string> {
  const bucket = uniqueName("test-bucket");
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      CreateBucketConfiguration: { LocationConstraint: TEST_REGION },
    }),
  );
  return bucket;
}

/** Every key under a prefix, in S3's order (the run store's own listing). */
export function listKeys(bucket: string, prefix: string): Promise<string[]> {
  return listStoreKeys({ s3, bucket }, prefix);
}

/** The prefix of one log group's spill, rejected or malformed chunks. */
export function chunkPrefix(kind: Exclude<ChunkKind, "backfill">, logGroup: string): string {
  return `${kind}/${logGroupKeySegment(logGroup)}/`;
}

/** Every chunk under a prefix, read through the run store and the project's chunk format. */
export async function readChunks(bucket: string, prefix: string): Promise<{ key: string; chunk: Chunk }[]> {
  const chunks: { key: string; chunk: Chunk }[] = [];
  for (const key of await listKeys(bucket, prefix)) {
    const found = await getChunk({ s3, bucket }, key);
    if (found) chunks.push({ key, chunk: found.chunk });
  }
  return chunks;
}

/** Every record of every chunk under a prefix. */
export async function chunkRecords(bucket: string, prefix: string): Promise<ChunkRecord[]> {
  return (await readChunks(bucket, prefix)).flatMap(({ chunk }) => chunk.records);
}
