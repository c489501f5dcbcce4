import { promisify } from "node:util";
import zlib from "node:zlib";
import protobuf from "protobufjs/minimal.js";
import snappy from "snappyjs";
import { HttpError } from "./errors.ts";
import { type LabelPairs, labelsFromObject, labelsFromString } from "./labels.ts";
import { NS_PER_MS, parseRfc3339Nano } from "./time-format.ts";

export interface DecodedEntry {
  ts: bigint;
  line: string;
  metadata: LabelPairs | undefined;
}

/** A stream of a push request, labels parsed and sorted (service_name not added yet). */
export interface DecodedStream {
  labels: LabelPairs;
  entries: DecodedEntry[];
}

const gunzip = promisify(zlib.gunzip);
const inflateRaw = promisify(zlib.inflateRaw);

/** Loki's distributor refuses bodies over `distributor.max_recv_msg_size` (100 MiB) after decoding. */
const MAX_DECODED_BODY_BYTES = 100 * 1024 * 1024;

function badRequest(message: string): HttpError {
  return new HttpError(400, `${message}\n`);
}

/** Undoes Content-Encoding like Loki's push parser: gzip, deflate (raw DEFLATE) or none. */
export async function decodeContentEncoding(
  body: Buffer,
  contentEncoding: string | undefined,
): Promise<Buffer> {
  const options = { maxOutputLength: MAX_DECODED_BODY_BYTES };
  switch (contentEncoding ?? "") {
    case "":
    case "snappy": // snappy is undone by the protobuf decoder, as in Loki
      return body;
    case "gzip":
      try {
        return await gunzip(body, options);
      } catch (error) {
        const code = (error as { code?: string }).code;
        throw badRequest(
          code === "Z_DATA_ERROR" && body[0] !== 0x1f ? "gzip: invalid header" : "unexpected EOF",
        );
      }
    case "deflate":
      try {
        return await inflateRaw(body, options);
      } catch {
        throw badRequest("flate: corrupt input before offset 0");
      }
    default:
      throw badRequest(`Content-Encoding ${JSON.stringify(contentEncoding)} not supported`);
  }
}

/** Go `mime.ParseMediaType` just far enough to tell JSON from protobuf. */
export function mediaType(contentType: string | undefined): string {
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (type === "") throw badRequest("mime: no media type");
  return type;
}

const JSON_PREFIX = "loghttp.PushRequest.Streams: []loghttp.LogProtoStream: ";

/**
 * Loki decodes JSON pushes with jsoniter, whose messages quote ~10 bytes before the error
 * position and ~50 around it; clients only log them, so the position here is approximate.
 */
function jsoniterError(message: string, raw: string, head: number): HttpError {
  const peekStart = Math.max(0, head - 10);
  const contextStart = Math.max(0, head - 50);
  const contextEnd = Math.min(raw.length, head + 50);
  return badRequest(
    `${JSON_PREFIX}${message}, error found in #${head - peekStart} byte of ...|${raw.slice(peekStart, head)}|..., ` +
      `bigger context ...|${raw.slice(contextStart, contextEnd)}|...`,
  );
}

function positionOf(raw: string, value: unknown): number {
  const needle = JSON.stringify(value);
  const index = needle === undefined ? -1 : raw.indexOf(needle);
  return index < 0 ? raw.length : Math.min(raw.length, index + 10);
}

const NOT_A_NUMBER =
  "unmarshalerDecoder: Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol";
const NOT_A_STRING = "unmarshalerDecoder: Value is string, but can't find closing '\"' symbol";
const INTEGER = /^[+-]?\d{1,19}$/;

function parseJson(raw: string): unknown {
  if (raw.trim() === "") throw badRequest("EOF");
  try {
    return JSON.parse(raw);
  } catch (error) {
    const position = /position (\d+)/.exec((error as Error).message);
    const head = position ? Number(position[1]) : raw.length;
    throw jsoniterError("Skip: do not know how to skip: 0", raw, head);
  }
}

function decodeMetadata(value: unknown, raw: string): LabelPairs | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value))
    throw jsoniterError(NOT_A_STRING, raw, positionOf(raw, value));
  const pairs: LabelPairs = [];
  for (const [name, text] of Object.entries(value)) {
    if (typeof text !== "string") throw jsoniterError(NOT_A_STRING, raw, positionOf(raw, text));
    pairs.push([name, text]);
  }
  return pairs.length === 0 ? undefined : pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** `{"streams":[{"stream":{...},"values":[["<ns>","<line>",{<metadata>}]]}]}` (API v1). */
export function decodeJsonPush(body: Buffer): DecodedStream[] {
  const raw = body.toString("utf8");
  const document = parseJson(raw) as { streams?: unknown } | null;
  if (document === null || typeof document !== "object") throw jsoniterError(NOT_A_STRING, raw, 0);
  const streams = document.streams ?? [];
  if (!Array.isArray(streams)) throw jsoniterError("ReadArray: expect [ or n", raw, positionOf(raw, streams));
  const labelObjects: Array<Record<string, string>> = [];
  const entryLists: DecodedEntry[][] = [];
  for (const stream of streams as Array<{ stream?: unknown; values?: unknown }>) {
    const labelObject = stream?.stream ?? {};
    if (typeof labelObject !== "object" || Array.isArray(labelObject) || labelObject === null) {
      throw jsoniterError(NOT_A_STRING, raw, positionOf(raw, labelObject));
    }
    for (const value of Object.values(labelObject)) {
      if (typeof value !== "string") throw jsoniterError(NOT_A_STRING, raw, positionOf(raw, value));
    }
    const values = stream.values ?? [];
    if (!Array.isArray(values)) throw jsoniterError("ReadArray: expect [ or n", raw, positionOf(raw, values));
    const entries: DecodedEntry[] = new Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (!Array.isArray(value)) throw jsoniterError("ReadArray: expect [ or n", raw, positionOf(raw, value));
      const tsText: unknown = value[0];
      if (typeof tsText !== "string" || !INTEGER.test(tsText)) {
        throw jsoniterError(NOT_A_NUMBER, raw, positionOf(raw, tsText));
      }
      const line: unknown = value[1] ?? "";
      if (typeof line !== "string") throw jsoniterError(NOT_A_STRING, raw, positionOf(raw, line));
      entries[i] = { ts: BigInt(tsText), line, metadata: decodeMetadata(value[2], raw) };
    }
    labelObjects.push(labelObject as Record<string, string>);
    entryLists.push(entries);
  }
  // Loki parses the label strings after decoding the whole body; a bad name fails the request.
  return labelObjects.map((labels, index) => ({
    labels: labelsFromObject(labels),
    entries: entryLists[index] as DecodedEntry[],
  }));
}

/** The pre-v1 format of `/api/prom/push`: `{"streams":[{"labels":"{..}","entries":[{"ts":"<RFC3339Nano>","line":".."}]}]}`. */
export function decodeLegacyJsonPush(body: Buffer): DecodedStream[] {
  const raw = body.toString("utf8");
  const document = parseJson(raw) as { streams?: Array<{ labels?: unknown; entries?: unknown }> } | null;
  const decoded: DecodedStream[] = [];
  for (const stream of document?.streams ?? []) {
    const entries: DecodedEntry[] = [];
    for (const entry of (stream.entries ?? []) as Array<{ ts?: unknown; line?: unknown }>) {
      const ts = typeof entry.ts === "string" ? parseRfc3339Nano(entry.ts) : undefined;
      if (ts === undefined) throw badRequest(`parsing time ${JSON.stringify(entry.ts)}: invalid timestamp`);
      entries.push({ ts, line: typeof entry.line === "string" ? entry.line : "", metadata: undefined });
    }
    decoded.push({
      labels: labelsFromString(typeof stream.labels === "string" ? stream.labels : "{}"),
      entries,
    });
  }
  return decoded;
}

function readLabelPair(reader: protobuf.Reader, end: number): [string, string] {
  let name = "";
  let value = "";
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1) name = reader.string();
    else if (tag >>> 3 === 2) value = reader.string();
    else reader.skipType(tag & 7);
  }
  return [name, value];
}

function readTimestamp(reader: protobuf.Reader, end: number): bigint {
  let seconds = 0n;
  let nanos = 0n;
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1) seconds = BigInt(reader.int64().toString());
    else if (tag >>> 3 === 2) nanos = BigInt(reader.int32());
    else reader.skipType(tag & 7);
  }
  return seconds * 1000n * NS_PER_MS + nanos;
}

function readEntry(reader: protobuf.Reader, end: number): DecodedEntry {
  let ts = 0n;
  let line = "";
  let metadata: LabelPairs | undefined;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (field === 1) {
      const length = reader.uint32();
      ts = readTimestamp(reader, reader.pos + length);
    } else if (field === 2) line = reader.string();
    else if (field === 3) {
      const length = reader.uint32();
      metadata ??= [];
      metadata.push(readLabelPair(reader, reader.pos + length));
    } else reader.skipType(tag & 7);
  }
  metadata?.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { ts, line, metadata };
}

/**
 * logproto.PushRequest (pkg/push/push.proto): streams=1 {labels=1, entries=2 {timestamp=1,
 * line=2, structuredMetadata=3 {name=1, value=2}}}, snappy block-compressed as promtail sends it.
 */
export function decodeProtobufPush(body: Buffer): DecodedStream[] {
  let bytes: Buffer;
  try {
    bytes = snappy.uncompress(body, MAX_DECODED_BODY_BYTES);
  } catch {
    throw badRequest("snappy: corrupt input");
  }
  const reader = protobuf.Reader.create(bytes);
  const streams: Array<{ labelText: string; entries: DecodedEntry[] }> = [];
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag >>> 3 !== 1) {
        reader.skipType(tag & 7);
        continue;
      }
      const end = reader.uint32() + reader.pos;
      const stream = { labelText: "", entries: [] as DecodedEntry[] };
      while (reader.pos < end) {
        const streamTag = reader.uint32();
        if (streamTag >>> 3 === 1) stream.labelText = reader.string();
        else if (streamTag >>> 3 === 2) {
          const length = reader.uint32();
          stream.entries.push(readEntry(reader, reader.pos + length));
        } else reader.skipType(streamTag & 7);
      }
      streams.push(stream);
    }
  } catch (error) {
    throw badRequest(`proto: PushRequest: ${(error as Error).message}`);
  }
  return streams.map((stream) => ({ labels: labelsFromString(stream.labelText), entries: stream.entries }));
}
