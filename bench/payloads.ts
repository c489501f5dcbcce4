import { randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";
import type { LogEvent } from "../functions/core/log-event.ts";
import { cloudWatchEventId } from "../test/fixtures/subscription.ts";

/**
 * Realistic CloudWatch payloads for the benchmarks: Lambda runtime lines (text and JSON formats,
 * with a request id the shipper extracts) of a chosen size, with varied words and numbers so that
 * compression is not flattered, wrapped the way a subscription filter delivers them.
 */

const WORDS =
  "order payment user request handler error timeout retry queue lambda stored cache miss hit latency".split(
    " ",
  );

/** A log line of exactly `bytes` bytes (ASCII), shaped like a Node.js or Powertools JSON log line. */
export function logLine(bytes: number, index: number, timestampMs: number, requestId: string): string {
  const time = new Date(timestampMs).toISOString();
  let line =
    index % 3 === 0
      ? `{"timestamp":"${time}","level":"INFO","requestId":"${requestId}","message":"`
      : `${time}\t${requestId}\tINFO\t`;
  let seed = (index * 2_654_435_761) % 2_147_483_648;
  while (line.length < bytes) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    line += `${WORDS[seed % WORDS.length]}=${seed % 100_000} `;
  }
  return line.slice(0, bytes);
}

/** `count` events of one log stream, 1 ms apart from `startMs`, a new request id every 20 events. */
export function logEvents(count: number, lineBytes: number, startMs: number, logStream: string): LogEvent[] {
  const events: LogEvent[] = [];
  let requestId = randomUUID();
  for (let index = 0; index < count; index += 1) {
    if (index % 20 === 0) requestId = randomUUID();
    const timestamp = startMs + index;
    events.push({
      id: cloudWatchEventId(timestamp),
      timestamp,
      message: logLine(lineBytes, index, timestamp, requestId),
      logStream,
    });
  }
  return events;
}

export function lambdaLogStreamName(index: number): string {
  return `2026/11/25/[$LATEST]${index.toString(16).padStart(32, "0")}`;
}

/** The Lambda event of a subscription filter: `awslogs.data` = base64(gzip(JSON DATA_MESSAGE)). */
export function subscriptionPayload(
  logGroup: string,
  events: LogEvent[],
  owner = "123456789012",
): { awslogs: { data: string } } {
  const logStream = events[0]?.logStream ?? lambdaLogStreamName(0);
  const message = {
    messageType: "DATA_MESSAGE",
    owner,
    logGroup,
    logStream,
    subscriptionFilters: ["loki-shipper"],
    logEvents: events.map(({ id, timestamp, message }) => ({ id, timestamp, message })),
  };
  return { awslogs: { data: gzipSync(JSON.stringify(message)).toString("base64") } };
}
