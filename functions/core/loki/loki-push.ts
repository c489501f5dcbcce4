import { gzipSync } from "node:zlib";
import { encodePushRequestProtobufTransient } from "./push-protobuf.ts";
import { snappyCompress } from "./snappy.ts";

/**
 * Loki push bodies: `logproto.PushRequest` protobuf in snappy block format (what promtail and
 * Loki's own clients send) or JSON, optionally gzip'd. https://grafana.com/docs/loki/latest/reference/loki-http-api/#ingest-logs
 */

export interface PushEntry {
  /** Nanoseconds since the epoch. */
  ns: bigint;
  line: string;
  /** UTF-8 bytes of `line`, when the caller measured them already (the encoder needs them). */
  lineBytes?: number;
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
    return {
      body: snappyCompress(encodePushRequestProtobufTransient(streams)),
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
 * What an entry adds to a push once Loki has decoded it, besides its line and its metadata
 * (name + value + 4 bytes per pair): timestamp and field headers, at most. Loki refuses a push over
 * 4 MiB decoded with a 500 that retrying never fixes (gRPC message size), so batches are cut by it.
 */
export const ENTRY_OVERHEAD_BYTES = 16;
