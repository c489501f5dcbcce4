import { isAscii } from "node:buffer";
import { gunzipSync } from "node:zlib";
import * as z from "zod/mini";
import { InputError } from "../core/errors.ts";
import type { LogEvent } from "../core/log-event.ts";
import "../core/mini-schema.ts";

/**
 * CloudWatch Logs subscription payloads: `awslogs.data` is base64 of gzip'd JSON with
 * `messageType` DATA_MESSAGE (events) or CONTROL_MESSAGE (sent when the filter is created, to be
 * ignored). https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html
 */

export type MalformedStage = "event" | "base64" | "gzip" | "json" | "shape" | "message_type";

/** A subscription payload that cannot be shipped; it is kept in S3 `malformed/` with this message. */
export class MalformedPayloadError extends InputError {
  readonly stage: MalformedStage;
  constructor(stage: MalformedStage, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.stage = stage;
  }
}

export interface DataMessage {
  messageType: "DATA_MESSAGE";
  owner: string;
  logGroup: string;
  logStream: string;
  subscriptionFilters: string[];
  events: LogEvent[];
}

export type SubscriptionMessage = DataMessage | { messageType: "CONTROL_MESSAGE" };

const dataMessageSchema = z.object({
  messageType: z.literal("DATA_MESSAGE"),
  owner: z.string().check(z.minLength(1)),
  logGroup: z.string().check(z.minLength(1)),
  logStream: z.string().check(z.minLength(1)),
  subscriptionFilters: z._default(z.array(z.string()), []),
  // Checked by checkLogEvents: a schema object per event is the costliest part of decoding 10,000.
  logEvents: z.array(z.unknown()),
});

/** At most this many shape problems are named in the error. */
const MAX_PROBLEMS = 5;

/** `logEvents[i]` must be `{id: non-empty string, timestamp: whole ms >= 0, message: string}`. */
function logEventProblems(logEvents: unknown[], problems: string[]): void {
  for (let index = 0; index < logEvents.length && problems.length < MAX_PROBLEMS; index++) {
    const event = logEvents[index] as { id?: unknown; timestamp?: unknown; message?: unknown } | null;
    if (typeof event !== "object" || event === null) {
      problems.push(`logEvents.${index}: expected an object`);
      continue;
    }
    if (typeof event.id !== "string" || event.id.length === 0) {
      problems.push(`logEvents.${index}.id: expected a non-empty string`);
    }
    if (typeof event.timestamp !== "number" || !Number.isInteger(event.timestamp) || event.timestamp < 0) {
      problems.push(`logEvents.${index}.timestamp: expected a whole number of milliseconds`);
    }
    if (typeof event.message !== "string") problems.push(`logEvents.${index}.message: expected a string`);
  }
}

/** gunzip writes into chunks of this size at least (zlib's default, 16 KiB, is several times slower here). */
const MIN_INFLATE_CHUNK = 64 * 1024;
/**
 * And at most this: the size hint comes from the payload, which is not trusted. Pages of the chunk
 * that zlib does not write are never touched, so a forged hint costs address space, not memory;
 * a payload larger than the chunk is inflated into several and copied into one more.
 */
const MAX_INFLATE_CHUNK = 256 * 1024 * 1024;

/**
 * The output chunk size for gunzip: the size the gzip trailer announces (ISIZE, RFC 1952 §2.3.1),
 * bounded. Inflating into one chunk of the right size saves zlib's many small chunks and their
 * concatenation. zlib checks the trailer itself; the bound keeps a forged one from reserving
 * gigabytes before that check.
 */
function inflatedSizeHint(compressed: Buffer): number {
  const announced = compressed.length >= 4 ? compressed.readUInt32LE(compressed.length - 4) : 0;
  return Math.min(MAX_INFLATE_CHUNK, Math.max(MIN_INFLATE_CHUNK, announced + 1));
}

/** base64, then gzip: the UTF-8 JSON bytes of `awslogs.data` (or a Kinesis record's `data`, named by `field`). */
function payloadBytes(data: string, field: string): Buffer {
  // Node's decoder skips characters that are not base64; a decoded length short of what the
  // input's length implies shows them, without a separate pass over a megabyte of text.
  const compressed = Buffer.from(data, "base64");
  const padding = data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0;
  if (data.length % 4 !== 0 || compressed.length !== (data.length / 4) * 3 - padding) {
    throw new MalformedPayloadError("base64", `${field} is not valid base64`);
  }
  try {
    return gunzipSync(compressed, { chunkSize: inflatedSizeHint(compressed) });
  } catch (error) {
    throw new MalformedPayloadError("gzip", `${field} is not gzip data: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The logEvents array is parsed in pieces of about this many bytes (see parsePayload). */
const PIECE_BYTES = 64 * 1024;
/**
 * Payloads up to this size are parsed as one text, which measured faster than pieces (a fifth of
 * the handler at 200-byte lines, 2 MB payloads: bench/handler-path.ts); past it, the fresh pages of a
 * string the payload's size cost more than the parse (a quarter of the transform at 1 KiB lines, 11 MB).
 */
const PIECES_FROM_BYTES = 4 * 1024 * 1024;
const EVENTS_KEY = Buffer.from(',"logEvents":[');
const PAYLOAD_END = Buffer.from("]}");
/** Between two objects of an array; cannot occur inside a JSON string, where a quote is escaped. */
const BETWEEN_OBJECTS = Buffer.from('},{"');

/**
 * JSON.parse of the payload; past `piecesFrom` bytes, its logEvents array (last, as CloudWatch
 * writes it) parsed in pieces cut between two events. The whole payload as one string would be a
 * fresh allocation the size of the payload (outside V8's heap), whose first touch of each page cost
 * more than the parse; pieces fit in V8's young generation, whose memory is reused. A cut inside a
 * nested value leaves a piece that does not parse: then, as for any other layout, the text is
 * parsed whole.
 */
function parsePayload(bytes: Buffer, piecesFrom: number): unknown {
  // Pure ASCII (most log payloads) is checked natively and read as Latin-1, 5x faster than UTF-8.
  const encoding = isAscii(bytes) ? "latin1" : "utf8";
  const key = bytes.length > piecesFrom ? bytes.lastIndexOf(EVENTS_KEY) : -1;
  const arrayEnd = bytes.length - PAYLOAD_END.length;
  if (key > 0 && bytes.indexOf(PAYLOAD_END, arrayEnd) === arrayEnd) {
    try {
      const message = JSON.parse(`${bytes.toString(encoding, 0, key)}}`) as Record<string, unknown>;
      message.logEvents = parseArrayInPieces(bytes, key + EVENTS_KEY.length, arrayEnd, encoding);
      return message;
    } catch {
      // Not the usual layout: the whole parse below decides, and words any error.
    }
  }
  return JSON.parse(bytes.toString(encoding));
}

const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * The elements of the JSON array whose elements lie in bytes [from, to). Each piece is parsed with
 * the bytes on either side (the array's brackets, or the commas between events) made brackets for
 * that moment, so that its text is one slice, not a slice and a copy with brackets.
 */
function parseArrayInPieces(bytes: Buffer, from: number, to: number, encoding: BufferEncoding): unknown[] {
  const elements: unknown[] = [];
  for (let start = from; start < to; ) {
    const cut = start + PIECE_BYTES < to ? bytes.indexOf(BETWEEN_OBJECTS, start + PIECE_BYTES) : -1;
    const end = cut >= 0 && cut < to ? cut + 1 : to;
    const before = bytes[start - 1] as number;
    const after = bytes[end] as number;
    bytes[start - 1] = OPEN_BRACKET;
    bytes[end] = CLOSE_BRACKET;
    try {
      const piece = JSON.parse(bytes.toString(encoding, start - 1, end + 1)) as unknown[];
      for (const element of piece) elements.push(element);
    } finally {
      bytes[start - 1] = before;
      bytes[end] = after;
    }
    start = end + 1;
  }
  return elements;
}

/**
 * Decodes `event.awslogs.data`, or the same payload in a Kinesis record's data (`field` names it in
 * messages); throws MalformedPayloadError saying which step failed. `piecesFrom`: the payload size
 * from which the events are parsed in pieces (tests lower it).
 */
export function decodeSubscriptionData(
  data: unknown,
  field = "awslogs.data",
  piecesFrom = PIECES_FROM_BYTES,
): SubscriptionMessage {
  if (typeof data !== "string" || data.length === 0) {
    throw new MalformedPayloadError(
      "event",
      `the event has no ${field} string: not a CloudWatch Logs subscription payload`,
    );
  }
  const bytes = payloadBytes(data, field);
  let parsed: unknown;
  try {
    parsed = parsePayload(bytes, piecesFrom);
  } catch (error) {
    throw new MalformedPayloadError("json", `${field} is not JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const messageType = (parsed as { messageType?: unknown } | null)?.messageType;
  if (messageType === "CONTROL_MESSAGE") return { messageType: "CONTROL_MESSAGE" };
  if (messageType !== "DATA_MESSAGE") {
    throw new MalformedPayloadError(
      "message_type",
      `unknown messageType ${JSON.stringify(messageType)}: expected DATA_MESSAGE or CONTROL_MESSAGE`,
    );
  }
  const result = dataMessageSchema.safeParse(parsed);
  const problems = result.success
    ? []
    : result.error.issues
        .slice(0, MAX_PROBLEMS)
        .map((issue) => `${issue.path.join(".") || "payload"}: ${issue.message}`);
  const rawEvents = (parsed as { logEvents?: unknown }).logEvents;
  if (Array.isArray(rawEvents)) logEventProblems(rawEvents, problems);
  if (!result.success || problems.length > 0) {
    throw new MalformedPayloadError(
      "shape",
      `the DATA_MESSAGE does not have the expected shape: ${problems.join("; ")}`,
    );
  }
  const message = result.data;
  const logEvents = message.logEvents as { id: string; timestamp: number; message: string }[];
  return {
    messageType: "DATA_MESSAGE",
    owner: message.owner,
    logGroup: message.logGroup,
    logStream: message.logStream,
    subscriptionFilters: message.subscriptionFilters,
    events: logEvents.map((event) => ({
      id: event.id,
      timestamp: event.timestamp,
      message: event.message,
      logStream: message.logStream,
    })),
  };
}
