import { describe, expect, it } from "vitest";
import { Stream } from "../../loki-test-server/store.ts";

function entry(ts: number, line: string) {
  return { ts: BigInt(ts), line, metadata: undefined };
}

function contents(stream: Stream): string[] {
  return stream.entries.map((e) => `${e.ts}:${e.line}`);
}

describe("stream storage", () => {
  it("keeps entries sorted by time when batches arrive out of order, equal timestamps in push order", () => {
    const stream = new Stream("{}", []);
    stream.insertBatch([entry(10, "a"), entry(20, "b"), entry(30, "c")]);
    stream.insertBatch([entry(25, "d"), entry(5, "e"), entry(20, "f")]);
    stream.insertBatch([entry(40, "g")]);
    expect(contents(stream)).toEqual(["5:e", "10:a", "20:b", "20:f", "25:d", "30:c", "40:g"]);
    expect(stream.newestTs).toBe(40n);
  });

  it("drops entries identical to a stored one or to an earlier one of the same batch", () => {
    const stream = new Stream("{}", []);
    stream.insertBatch([entry(10, "a"), entry(10, "a"), entry(20, "b")]);
    stream.insertBatch([entry(10, "a"), entry(10, "other"), entry(20, "b"), entry(30, "c")]);
    stream.insertBatch([entry(30, "c")]);
    expect(contents(stream)).toEqual(["10:a", "10:other", "20:b", "30:c"]);
  });
});
