import { gunzipSync } from "node:zlib";
import snappy from "snappyjs";
import { describe, expect, it } from "vitest";
import { formatLabels } from "../../functions/core/loki/label-text.ts";
import { encodePush, type PushStream } from "../../functions/core/loki/loki-push.ts";
import { encodePushRequestProtobuf } from "../../functions/core/loki/push-protobuf.ts";
import { decodeProtobufPush } from "../../loki-test-server/push-decode.ts";
import { lambdaLines } from "../fixtures/subscription.ts";

describe("encodePushRequestProtobuf", () => {
  it("produces the bytes Loki's own Go code produces (contract case c17, captured bytes)", () => {
    const now = 1_795_618_291_784_654_321n;
    const bytes = encodePushRequestProtobuf([
      {
        labels: { case: "c17", run: "r202611251451316697", variant: "snappy" },
        entries: [
          { ns: now - 1_000_000_000n, line: "proto line 1" },
          { ns: now, line: "proto line 2", metadata: [["trace_id", "abc123"]] },
        ],
      },
    ]);
    expect(Buffer.from(bytes).toString("base64")).toBe(
      "CosBCjl7Y2FzZT0iYzE3IiwgcnVuPSJyMjAyNjExMjUxNDUxMzE2Njk3IiwgdmFyaWFudD0ic25hcHB5In0SHAoMCPLrm9gGEPG/k/YCEgxwcm90byBsaW5lIDESMAoMCPPrm9gGEPG/k/YCEgxwcm90byBsaW5lIDIaEgoIdHJhY2VfaWQSBmFiYzEyMw==",
    );
  });

  it("round-trips through the Loki test server's decoder: unicode, empty lines, whole seconds, int64 seconds, metadata", () => {
    const streams: PushStream[] = [
      {
        labels: { app: "ünï", time_shard: "2026-11-25T14" },
        entries: [
          { ns: 1_795_618_291_000_000_000n, line: "a whole second (nanos omitted)" },
          { ns: 1_795_618_291_784_654_321n, line: lambdaLines.unicode(1), metadata: [["request_id", "ü-1"]] },
          {
            ns: 1_795_618_291_784_654_322n,
            line: "",
            metadata: [
              ["log_stream", "s"],
              ["trace", ""],
            ],
          },
          { ns: 999n, line: "before the first second" },
          { ns: 5_000_000_000_123_456_789n, line: "after 2106: seconds beyond 32 bits" },
        ],
      },
      { labels: { app: "b" }, entries: [{ ns: 1n, line: "x".repeat(70_000) }] },
    ];
    const decoded = decodeProtobufPush(encodePush(streams, "protobuf").body);
    expect(decoded).toEqual(
      streams.map((stream) => ({
        labels: Object.entries(stream.labels),
        entries: stream.entries.map((entry) => ({
          ts: entry.ns,
          line: entry.line,
          metadata: entry.metadata ? [...entry.metadata].sort() : undefined,
        })),
      })),
    );
  });

  it("is sent snappy-compressed (block format) with a protobuf content type", () => {
    const streams = [{ labels: { a: "1" }, entries: [{ ns: 1n, line: "x" }] }];
    const encoded = encodePush(streams, "protobuf");
    expect(encoded.headers["Content-Type"]).toBe("application/x-protobuf");
    expect(Buffer.from(snappy.uncompress(encoded.body))).toEqual(
      Buffer.from(encodePushRequestProtobuf(streams)),
    );
  });

  it("keeps each body intact while later pushes are encoded (pushes are in flight together)", () => {
    const streamOf = (line: string, count: number): PushStream[] => [
      {
        labels: { a: "1" },
        entries: Array.from({ length: count }, (_, at) => ({ ns: BigInt(at + 1), line })),
      },
    ];
    const large = streamOf("the first, larger push ".repeat(20), 500);
    const body = encodePush(large, "protobuf").body;
    const copy = Buffer.from(body);
    encodePush(streamOf("a later push that reuses the encoder's buffers", 300), "protobuf");
    expect(body.equals(copy)).toBe(true);
    expect(Buffer.from(snappy.uncompress(body))).toEqual(encodePushRequestProtobuf(large));
    // Exact size: what a client copies or holds while the push is in flight is the body alone.
    expect(body.buffer.byteLength).toBe(body.length);
  });
});

describe("encodePush json", () => {
  it("writes nanosecond strings and structured metadata as the third value element, gzip'd", () => {
    const encoded = encodePush(
      [
        {
          labels: { b: "2", a: "1" },
          entries: [{ ns: 1_795_618_291_784_654_321n, line: "l", metadata: [["request_id", "r"]] }],
        },
      ],
      "json",
    );
    expect(encoded.headers).toEqual({ "Content-Type": "application/json", "Content-Encoding": "gzip" });
    expect(JSON.parse(gunzipSync(encoded.body).toString())).toEqual({
      streams: [{ stream: { a: "1", b: "2" }, values: [["1795618291784654321", "l", { request_id: "r" }]] }],
    });
  });
});

describe("formatLabels", () => {
  it("sorts names and quotes values", () => {
    expect(formatLabels({ z: 'say "hi"', a: "x\\y" })).toBe('{a="x\\\\y", z="say \\"hi\\""}');
  });
});
