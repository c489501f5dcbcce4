import { gzipSync } from "node:zlib";
import protobuf from "protobufjs/minimal.js";
import snappy from "snappyjs";

/**
 * Loki push bodies: `logproto.PushRequest` protobuf in snappy block format (what promtail and
 * Loki's own clients send) or JSON, optionally gzip'd. https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs
 */

export interface PushEntry {
  /** Nanoseconds since the epoch. */
  ns: bigint;
  line: string;
  /** Structured metadata (name, value) pairs, stored with the entry but not indexed. */
  metadata?: [string, string][];
}

export interface PushStream {
  labels: Record<string, string>;
  entries: PushEntry[];
}

export type PushFormat = "protobuf" | "json";

export interface EncodedPush {
  body: Buffer;
  headers: Record<string, string>;
}

/** `{a="x", b="y"}` with sorted names: the form Loki parses and prints back in its errors. */
export function formatLabels(labels: Record<string, string>): string {
  const names = Object.keys(labels).sort();
  return `{${names.map((name) => `${name}=${JSON.stringify(labels[name])}`).join(", ")}}`;
}

/** Stream key = sorted label set. */
export function streamKey(labels: Record<string, string>): string {
  return formatLabels(labels);
}

const NANOS_PER_SECOND = 1_000_000_000n;

/** logproto.PushRequest: streams=1; Stream labels=1, entries=2; Entry timestamp=1, line=2, structuredMetadata=3. */
export function encodePushRequestProtobuf(streams: PushStream[]): Uint8Array {
  const writer = protobuf.Writer.create();
  for (const stream of streams) {
    writer.uint32((1 << 3) | 2).fork();
    writer.uint32((1 << 3) | 2).string(formatLabels(stream.labels));
    for (const entry of stream.entries) {
      writer.uint32((2 << 3) | 2).fork();
      // google.protobuf.Timestamp: seconds=1 (int64), nanos=2 (int32); zero values are omitted.
      const seconds = Number(entry.ns / NANOS_PER_SECOND);
      const nanos = Number(entry.ns % NANOS_PER_SECOND);
      writer.uint32((1 << 3) | 2).fork();
      if (seconds !== 0) writer.uint32(1 << 3).int64(seconds);
      if (nanos !== 0) writer.uint32(2 << 3).int32(nanos);
      writer.ldelim();
      if (entry.line.length > 0) writer.uint32((2 << 3) | 2).string(entry.line);
      for (const [name, value] of entry.metadata ?? []) {
        writer.uint32((3 << 3) | 2).fork();
        writer.uint32((1 << 3) | 2).string(name);
        writer.uint32((2 << 3) | 2).string(value);
        writer.ldelim();
      }
      writer.ldelim();
    }
    writer.ldelim();
  }
  return writer.finish();
}

export function encodePushRequestJson(streams: PushStream[]): string {
  return JSON.stringify({
    streams: streams.map((stream) => ({
      stream: stream.labels,
      values: stream.entries.map((entry) =>
        entry.metadata && entry.metadata.length > 0
          ? [entry.ns.toString(), entry.line, Object.fromEntries(entry.metadata)]
          : [entry.ns.toString(), entry.line],
      ),
    })),
  });
}

export function encodePush(streams: PushStream[], format: PushFormat, gzipJson = true): EncodedPush {
  if (format === "protobuf") {
    const compressed = snappy.compress(encodePushRequestProtobuf(streams));
    return {
      body: Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength),
      headers: { "Content-Type": "application/x-protobuf" },
    };
  }
  const json = encodePushRequestJson(streams);
  return gzipJson
    ? // Level 1: in a Lambda, CPU time costs more than the few extra bytes on the wire.
      {
        body: gzipSync(json, { level: 1 }),
        headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" },
      }
    : { body: Buffer.from(json), headers: { "Content-Type": "application/json" } };
}

/**
 * Bytes an entry adds to a push once Loki has decoded it: line, metadata and timestamp. Loki
 * refuses a push over 4 MiB decoded with a 500 that retrying never fixes (gRPC message size).
 */
export function entrySize(entry: PushEntry): number {
  let size = Buffer.byteLength(entry.line) + 16;
  for (const [name, value] of entry.metadata ?? []) size += name.length + Buffer.byteLength(value) + 4;
  return size;
}
