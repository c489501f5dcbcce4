import { describe, expect, it } from "vitest";
import {
  buildStreams,
  PRECHECK_MARGIN_MS,
  precheckEvent,
  splitIntoRequests,
} from "../../functions/core/delivery/batching.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { cloudWatchEventId, lambdaLines } from "../fixtures/subscription.ts";

const requestId = "8f5d3c1e-2b4a-4c6d-9e8f-0a1b2c3d4e5f";
const limits = {
  rejectOldSamplesMaxAgeMs: 7 * 86_400_000,
  creationGracePeriodMs: 600_000,
  maxLineSize: 262_144,
};

function event(timestamp: number, message: string, logStream = "stream-1"): LogEvent {
  return { id: cloudWatchEventId(timestamp), timestamp, message, logStream };
}

describe("buildStreams", () => {
  it("adds time_shard, sorts entries by time and puts log stream and request id into structured metadata", () => {
    const base = Date.parse("2026-11-25T13:59:59.000Z");
    const events = [
      event(base + 2000, lambdaLines.end(requestId)),
      event(base, lambdaLines.start(requestId)),
      event(base + 500, "plain"),
    ];
    const streams = buildStreams([{ logGroup: "/g", labels: { source: "cloudwatch" }, events }]);

    expect(streams.map((stream) => stream.labels)).toEqual([
      { source: "cloudwatch", time_shard: "2026-11-25T13" },
      { source: "cloudwatch", time_shard: "2026-11-25T14" },
    ]);
    expect(streams[0]?.entries.map((entry) => entry.line)).toEqual([lambdaLines.start(requestId), "plain"]);
    expect(streams[0]?.entries[0]?.metadata).toEqual([
      ["log_stream", "stream-1"],
      ["request_id", requestId],
    ]);
    expect(streams[0]?.entries[1]?.metadata).toEqual([["log_stream", "stream-1"]]);
  });

  it("makes the log stream a label when asked, and leaves out structured metadata when turned off", () => {
    const streams = buildStreams([
      {
        logGroup: "/g",
        labels: {},
        events: [event(0, lambdaLines.start(requestId), "a"), event(1, "x", "b")],
        eventLabels: { logStreamLabel: true, structuredMetadata: false },
      },
    ]);
    expect(streams.map((stream) => stream.labels.log_stream)).toEqual(["a", "b"]);
    expect(streams.every((stream) => stream.entries.every((entry) => entry.metadata === undefined))).toBe(
      true,
    );
  });
});

describe("entry sizes", () => {
  it("count a line's UTF-8 bytes and its metadata, which batches are cut by", () => {
    const line = lambdaLines.unicode(1);
    const [stream] = buildStreams([
      {
        logGroup: "/g",
        labels: {},
        events: [event(0, line, "stream-ü"), event(1, lambdaLines.end(requestId))],
      },
    ]);
    const [unicode, end] = stream?.entries ?? [];
    expect(unicode?.lineBytes).toBe(Buffer.byteLength(line));
    expect(unicode?.size).toBe(
      Buffer.byteLength(line) + 16 + "log_stream".length + Buffer.byteLength("stream-ü") + 4,
    );
    expect(end?.size).toBe(
      Buffer.byteLength(lambdaLines.end(requestId)) +
        16 +
        "log_stream".length +
        "stream-1".length +
        4 +
        "request_id".length +
        36 +
        4,
    );
  });
});

describe("splitIntoRequests", () => {
  it("bounds every request in bytes and entries and keeps each stream's order", () => {
    const now = Date.now();
    const events = Array.from({ length: 1000 }, (_, index) => event(now + index, "x".repeat(1000)));
    const streams = buildStreams([{ logGroup: "/g", labels: { a: "b" }, events }]);

    const requests = splitIntoRequests(streams, 100_000, 50);

    expect(requests.flatMap((request) => request.entries)).toHaveLength(1000);
    for (const request of requests) {
      expect(request.entries.length).toBeLessThanOrEqual(50);
      expect(request.entries.reduce((sum, entry) => sum + entry.size, 0)).toBeLessThanOrEqual(100_000);
    }
    const order = requests.flatMap((request) => request.entries.map((entry) => entry.ns));
    expect(order).toEqual([...order].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  it("never puts two streams in one request, however small they are", () => {
    const hour = 3_600_000;
    const start = Date.parse("2026-11-25T10:30:00Z");
    // Three hours of two small groups: six streams that would all fit one request by size.
    const events = Array.from({ length: 6 }, (_, index) =>
      event(start + index * (hour / 2), `line ${index}`),
    );
    const streams = buildStreams([
      { logGroup: "/a", labels: { group: "a" }, events },
      { logGroup: "/b", labels: { group: "b" }, events },
    ]);

    const requests = splitIntoRequests(streams, 1024 * 1024, 10_000);

    expect(streams).toHaveLength(8);
    expect(requests).toHaveLength(8);
    expect(new Set(requests.map((request) => request.key)).size).toBe(8);
    expect(requests.flatMap((request) => request.entries)).toHaveLength(12);
  });
});

describe("precheckEvent", () => {
  const now = Date.parse("2026-11-25T14:00:00Z");

  it("refuses what Loki would refuse, with a margin for Loki's clock", () => {
    expect(precheckEvent(event(now - limits.rejectOldSamplesMaxAgeMs, "x"), limits, now)?.kind).toBe(
      "too_old",
    );
    expect(
      precheckEvent(event(now - limits.rejectOldSamplesMaxAgeMs + PRECHECK_MARGIN_MS + 1, "x"), limits, now),
    ).toBeUndefined();
    expect(precheckEvent(event(now + limits.creationGracePeriodMs, "x"), limits, now)?.kind).toBe("too_new");
    expect(precheckEvent(event(now, "é".repeat(131_073)), limits, now)?.kind).toBe("line_too_long");
    expect(precheckEvent(event(now, "x".repeat(262_144)), limits, now)).toBeUndefined();
  });
});
