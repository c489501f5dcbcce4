/**
 * One CloudWatch Logs event as every path of the shipper sees it: the live subscription
 * (`logEvents[]`), `FilterLogEvents` pages, and the chunks kept in S3.
 */
export interface LogEvent {
  /** CloudWatch's event id: the same id in the subscription payload and in `FilterLogEvents`. */
  id: string;
  /** Milliseconds since the epoch, as CloudWatch stores it. */
  timestamp: number;
  message: string;
  /** The log stream the event was written to. */
  logStream: string;
}

/** Orders events by timestamp, then by id, so that every path sorts the same events the same way. */
export function compareEvents(a: LogEvent, b: LogEvent): number {
  if (a.timestamp !== b.timestamp) return a.timestamp - b.timestamp;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
