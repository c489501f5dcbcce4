import { randomBytes } from "node:crypto";
import snappy from "snappyjs";
import { describe, expect, it } from "vitest";
import { maxCompressedLength, snappyCompress } from "../../functions/core/loki/snappy.ts";
import { realisticEvents } from "../fixtures/subscription.ts";

/** Decompressed by an independent implementation (snappyjs, also what the Loki test server uses). */
function roundTrip(input: Uint8Array): { output: Buffer; compressed: Buffer } {
  const compressed = snappyCompress(input);
  return { compressed, output: Buffer.from(snappy.uncompress(compressed)) };
}

/** Realistic Lambda log lines (START, text, JSON, unicode, END, REPORT), `bytes` of them. */
function logText(bytes: number): Buffer {
  const text = Buffer.from(
    realisticEvents(Math.ceil(bytes / 50), 1_795_618_291_784)
      .map((event) => event.message)
      .join(""),
  );
  expect(text.length).toBeGreaterThanOrEqual(bytes);
  return text.subarray(0, bytes);
}

/** Random bytes whose first 64 come again 5,000 bytes later: beyond the 1-byte copy offsets' 2,047. */
function repeatedFarBack(): Buffer {
  const bytes = randomBytes(6_000);
  bytes.copy(bytes, 5_000, 0, 64);
  return bytes;
}

describe("snappyCompress", () => {
  it.each([
    ["empty input", Buffer.alloc(0)],
    ["input shorter than the match margin", Buffer.from("short text")],
    ["one repeated byte (copies longer than 64 bytes)", Buffer.alloc(100_000, 0x61)],
    ["random bytes (incompressible: literals)", randomBytes(70_000)],
    ["log lines over several 64 KiB blocks", logText(300_000)],
    ["log lines followed by random bytes", Buffer.concat([logText(40_000), randomBytes(40_000)])],
    ["a repeat 5,000 bytes back (2-byte copy offsets)", repeatedFarBack()],
  ])("writes the snappy block format for %s", (_name, input) => {
    const { output, compressed } = roundTrip(input);
    expect(output.equals(Buffer.from(input))).toBe(true);
    expect(compressed.length).toBeLessThanOrEqual(maxCompressedLength(input.length));
  });

  it("compresses log lines as well as snappyjs does", () => {
    const input = logText(1_000_000);
    const ours = snappyCompress(input).length;
    const reference = snappy.compress(input).length;
    expect(ours).toBeLessThan(input.length / 2);
    expect(Math.abs(ours - reference) / reference).toBeLessThan(0.01);
  });

  it("reads only its input when given a view into a larger buffer", () => {
    const backing = logText(200_000);
    const view = backing.subarray(50_000, 150_000);
    expect(roundTrip(view).output.equals(Buffer.from(view))).toBe(true);
  });
});
