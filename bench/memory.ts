import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { CHUNK_FORMAT, encodeChunk, logGroupKeySegment } from "../functions/core/storage/chunk-format.ts";
import { runKeys } from "../functions/core/storage/run-store.ts";
import type { AwsBed } from "./aws-bed.ts";
import { BENCH_TMP, bundle } from "./bundle.ts";
import type { MemoryRunSpec } from "./memory-run.ts";
import { lambdaLogStreamName, logEvents } from "./payloads.ts";

/**
 * Peak RSS of the shipper and of the replay handler for two run sizes, each in a fresh child
 * process (process.resourceUsage().maxRSS), so that one run's heap cannot hide in another's. The
 * child runs bundled JavaScript, as Lambda does: loading TypeScript sources through Node's type
 * stripping alone costs ~150 MB of RSS that a deployed function never has.
 */

export interface MemoryResult {
  kind: "shipper" | "replay";
  events: number;
  maxRssMb: number;
  seconds: number;
}

const run = promisify(execFile);
/**
 * The heap settings the Lambda Node.js runtime's bootstrap derives from a 256 MB function
 * (new space = memory / 64, semi space half of it, old space the rest): the garbage collector then
 * works within the function's memory instead of the much larger default of this machine.
 */
export const LAMBDA_256MB_FLAGS = ["--max-semi-space-size=2", "--max-old-space-size=252"];
const CHILD_SOURCE = fileURLToPath(new URL("./memory-run.ts", import.meta.url));
let childBundle: Promise<string> | undefined;

export async function measureMemory(spec: MemoryRunSpec): Promise<MemoryResult> {
  childBundle ??= bundle({
    entry: CHILD_SOURCE,
    outfile: join(BENCH_TMP, "memory-run.mjs"),
    minify: true,
    external: [],
  }).then((built) => built.outfile);
  const { stdout } = await run(
    process.execPath,
    [...LAMBDA_256MB_FLAGS, await childBundle, JSON.stringify(spec)],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const last = stdout.trim().split("\n").at(-1) ?? "{}";
  const answer = JSON.parse(last) as { maxRssMb: number; seconds: number; events: number };
  if (answer.events !== spec.events)
    throw new Error(`${spec.kind} memory run delivered ${answer.events} of ${spec.events} events`);
  return { kind: spec.kind, events: answer.events, maxRssMb: answer.maxRssMb, seconds: answer.seconds };
}

/**
 * Backfill slice chunks of `eventsPerChunk` events (as the export writes them) for a replay run:
 * one chunk encoded once and stored under every sequence number (Loki keeps a repeated entry once).
 */
export async function writeSliceChunks(
  bed: AwsBed,
  bucket: string,
  runId: string,
  logGroup: string,
  events: number,
  eventsPerChunk: number,
  lineBytes: number,
): Promise<void> {
  const segment = logGroupKeySegment(logGroup);
  const records = logEvents(eventsPerChunk, lineBytes, Date.now() - 6 * 3_600_000, lambdaLogStreamName(7));
  const body = encodeChunk({
    header: {
      format: CHUNK_FORMAT,
      kind: "backfill",
      logGroup,
      labels: { service_name: "bench-replay", runtime: "python" },
      createdAt: new Date().toISOString(),
      runId,
    },
    records,
  });
  for (let seq = 0; seq * eventsPerChunk < events; seq += 1) {
    await bed.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: runKeys.chunk(runId, segment, "s0", seq),
        Body: body,
        ContentType: "application/x-ndjson",
        ContentEncoding: "gzip",
      }),
    );
  }
}
