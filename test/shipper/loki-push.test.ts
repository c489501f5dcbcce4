import { gunzipSync } from "node:zlib";
import snappy from "snappyjs";
import { describe, expect, it } from "vitest";
import { encodePush, encodePushRequestProtobuf, formatLabels } from "../../functions/core/loki/loki-push.ts";

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

  it("is sent snappy-compressed (block format) with a protobuf content type", () => {
    const streams = [{ labels: { a: "1" }, entries: [{ ns: 1n, line: "x" }] }];
    const encoded = encodePush(streams, "protobuf");
    expect(encoded.headers["Content-Type"]).toBe("application/x-protobuf");
    expect(Buffer.from(snappy.uncompress(encoded.body))).toEqual(
      Buffer.from(encodePushRequestProtobuf(streams)),
    );
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
