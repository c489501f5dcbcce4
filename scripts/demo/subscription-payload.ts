import { gzipSync } from "node:zlib";
import type { CloudWatchLogsEvent } from "aws-lambda";
import type { LogEvent } from "../../functions/core/log-event.ts";

/**
 * What CloudWatch Logs hands a subscribed Lambda: the batch as gzip'd JSON, base64-encoded.
 * The demo plays CloudWatch's part, since moto stores subscriptions but does not deliver them.
 */
export function subscriptionEvent(
  logGroup: string,
  logStream: string,
  owner: string,
  events: LogEvent[],
): CloudWatchLogsEvent {
  const message = {
    messageType: "DATA_MESSAGE",
    owner,
    logGroup,
    logStream,
    subscriptionFilters: ["loki-shipper"],
    logEvents: events.map((event) => ({ id: event.id, timestamp: event.timestamp, message: event.message })),
  };
  return { awslogs: { data: gzipSync(JSON.stringify(message)).toString("base64") } };
}
