import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  FilterLogEventsCommand,
  PutLogEventsCommand,
  PutRetentionPolicyCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "./aws.ts";

/** The CloudWatch Logs client every test shares (moto's server, see aws.ts). */
export const logs = new CloudWatchLogsClient(awsClientConfig());

export const HOUR = 3_600_000;

/** The account a test's log group is in: the tests' own, or a source account (its client and id). */
export interface GroupAccount {
  client: CloudWatchLogsClient;
  account: string;
}

const OWN_ACCOUNT: GroupAccount = { client: logs, account: TEST_ACCOUNT };

/**
 * How far back tests put events they read back from Loki. A real Loki returns just-pushed entries
 * only while they are newer than its `query_ingesters_within` (3 h by default), older ones only
 * once it has flushed them; two hours leave a test an hour to run.
 */
export const RECENT_HISTORY_MS = 2 * HOUR;

/** The start of the last whole UTC hour, one to two hours ago: a full hour stream Loki still shows. */
export function lastWholeHour(now: number): number {
  return Math.floor(now / HOUR) * HOUR - HOUR;
}

/**
 * A CloudWatch Logs client whose FilterLogEvents calls pass through `before` first, which may
 * return a fault to throw or wait for something; every other call goes to moto unchanged. moto
 * cannot fail or throttle a request on demand: tests that need it wrap the real client's `send`.
 */
export function interceptedLogs(before: (call: number) => Error | undefined | Promise<Error | undefined>): {
  client: CloudWatchLogsClient;
  calls: number[];
} {
  const client = new CloudWatchLogsClient(awsClientConfig());
  const send = client.send.bind(client);
  const calls: number[] = [];
  client.send = (async (command: unknown, ...rest: unknown[]) => {
    if (command instanceof FilterLogEventsCommand) {
      calls.push(Date.now());
      const error = await before(calls.length);
      if (error) throw error;
    }
    return (send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
  }) as typeof client.send;
  return { client, calls };
}

export interface EventToPut {
  timestamp: number;
  message: string;
  logStream: string;
}

/** Creates the log group `name` with `tags` (untagged, as Lambda creates one, when `tags` is empty). */
export async function createLogGroup(
  name: string,
  tags: Record<string, string>,
  options: { retentionInDays?: number; in?: GroupAccount } = {},
): Promise<void> {
  const { client, account } = options.in ?? OWN_ACCOUNT;
  await client.send(new CreateLogGroupCommand({ logGroupName: name }));
  if (Object.keys(tags).length > 0) {
    await client.send(
      new TagResourceCommand({
        resourceArn: `arn:aws:logs:${TEST_REGION}:${account}:log-group:${name}`,
        tags,
      }),
    );
  }
  if (options.retentionInDays) {
    await client.send(
      new PutRetentionPolicyCommand({ logGroupName: name, retentionInDays: options.retentionInDays }),
    );
  }
}

/** A tagged Lambda-style log group (`/aws/lambda/<prefix>-<random>`) no other test uses. */
export async function createTaggedLogGroup(prefix: string, tags: Record<string, string>): Promise<string> {
  const name = `/aws/lambda/${uniqueName(prefix)}`;
  await createLogGroup(name, tags);
  return name;
}

/**
 * Creates a tagged log group holding `events` and returns them as FilterLogEvents shows them
 * (with CloudWatch's event ids, which the deterministic Loki timestamps derive from).
 */
export async function seedLogGroup(
  name: string,
  tags: Record<string, string>,
  events: EventToPut[],
  options: { retentionInDays?: number; in?: GroupAccount } = {},
): Promise<LogEvent[]> {
  await createLogGroup(name, tags, options);
  await putEvents(name, events, options.in);
  return readGroup(name, undefined, undefined, options.in);
}

export async function putEvents(name: string, events: EventToPut[], at = OWN_ACCOUNT): Promise<void> {
  for (const [logStreamName, streamEvents] of groupBy(events, (event) => event.logStream)) {
    await at.client
      .send(new CreateLogStreamCommand({ logGroupName: name, logStreamName }))
      .catch((error: Error) => {
        if (error.name !== "ResourceAlreadyExistsException") throw error;
      });
    const sorted = [...streamEvents].sort((a, b) => a.timestamp - b.timestamp);
    // PutLogEvents takes at most 10,000 events per call; 5,000 keeps each call well under 1 MB.
    for (let offset = 0; offset < sorted.length; offset += 5000) {
      await at.client.send(
        new PutLogEventsCommand({
          logGroupName: name,
          logStreamName,
          logEvents: sorted
            .slice(offset, offset + 5000)
            .map(({ timestamp, message }) => ({ timestamp, message })),
        }),
      );
    }
  }
}

/** Every event of a log group in `[startMs, endMs)`, as FilterLogEvents returns them. */
export async function readGroup(
  name: string,
  startMs?: number,
  endMs?: number,
  at = OWN_ACCOUNT,
): Promise<LogEvent[]> {
  const events: LogEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await at.client.send(
      new FilterLogEventsCommand({
        logGroupName: name,
        ...(startMs !== undefined ? { startTime: startMs } : {}),
        ...(endMs !== undefined ? { endTime: endMs - 1 } : {}),
        nextToken,
      }),
    );
    for (const event of page.events ?? []) {
      events.push({
        id: event.eventId ?? "",
        timestamp: event.timestamp ?? 0,
        message: event.message ?? "",
        logStream: event.logStreamName ?? "",
      });
    }
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** Events spread evenly over `[startMs, endMs)`, on `streams` log streams. */
export function spreadEvents(
  label: string,
  startMs: number,
  endMs: number,
  count: number,
  streams = 2,
): EventToPut[] {
  const step = (endMs - startMs) / count;
  return Array.from({ length: count }, (_, index) => ({
    timestamp: Math.floor(startMs + index * step),
    message: `${label} event ${index} {"level":"info","n":${index}}`,
    logStream: `2026/11/22/[$LATEST]${label}-${index % streams}`,
  }));
}

/** The items of a list grouped by a key, in first-seen order. */
export function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(keyOf(item));
    if (group) group.push(item);
    else groups.set(keyOf(item), [item]);
  }
  return groups;
}
