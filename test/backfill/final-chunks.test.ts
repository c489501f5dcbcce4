import { describe, expect, it } from "vitest";
import { CHUNK_FORMAT, type Chunk } from "../../functions/core/storage/chunk-format.ts";
import { FinalChunks } from "../../functions/core/workflow/final-chunks.ts";

const keyOf = (seq: number) => `runs/r/chunks/g/s/${String(seq).padStart(6, "0")}.ndjson.gz`;

function chunk(id: string): Chunk {
  return {
    header: {
      format: CHUNK_FORMAT,
      kind: "backfill",
      logGroup: "g",
      labels: {},
      createdAt: "2026-11-28T00:00:00Z",
    },
    records: [{ id, timestamp: 1, message: id, logStream: "s" }],
  };
}

/** Collects the keys a consumer receives until the source ends. */
async function collect(source: FinalChunks, after?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of source.keys(after)) keys.push(key);
  return keys;
}

describe("FinalChunks", () => {
  it("hands on each chunk once it is final, in order, and ends with the export", async () => {
    const source = new FinalChunks(keyOf);
    const consumed = collect(source);
    source.advance(2);
    await Promise.resolve();
    source.advance(3);
    expect(source.complete).toBe(false);
    source.end(true);
    expect(await consumed).toEqual([keyOf(0), keyOf(1), keyOf(2)]);
    // The slice is exported: these were all of its chunks.
    expect(source.complete).toBe(true);
  });

  it("starts after the replay checkpoint's last chunk and never hands on one that is not final", async () => {
    const source = new FinalChunks(keyOf);
    source.advance(5);
    const consumed = collect(source, keyOf(2));
    source.end(false);
    expect(await consumed).toEqual([keyOf(3), keyOf(4)]);
    // The export goes on in a later invocation: more chunks will come.
    expect(source.complete).toBe(false);
  });

  it("keeps only the last 4 chunks written in memory, each taken once; the others come from S3", () => {
    const source = new FinalChunks(keyOf);
    source.advance(3, [chunk("a"), chunk("b"), chunk("c")]);
    source.advance(6, [chunk("d"), chunk("e"), chunk("f")]);
    expect(source.take(keyOf(0))).toBeUndefined();
    expect(source.take(keyOf(1))).toBeUndefined();
    expect(source.take(keyOf(2))?.records[0]?.id).toBe("c");
    expect(source.take(keyOf(5))?.records[0]?.id).toBe("f");
    expect(source.take(keyOf(5))).toBeUndefined();
  });
});
