import {
  type CloudWatchLogsClient,
  FilterLogEventsCommand,
  type FilterLogEventsCommandInput,
} from "@aws-sdk/client-cloudwatch-logs";
import { LokiShipperError } from "../errors.ts";
import type { LogEvent } from "../log-event.ts";
import type { RateBudget } from "./rate-budget.ts";

/** CloudWatch kept answering "Rate exceeded" after every retry. */
export class CloudWatchThrottledError extends LokiShipperError {}

/** A page request failed for another reason (missing group, expired token...). */
export class CloudWatchReadError extends LokiShipperError {}

export interface FilterQuery {
  logGroupName: string;
  startMs: number;
  /** Exclusive. */
  endMs: number;
  filterPattern?: string;
  logStreamNames?: string[];
  logStreamNamePrefix?: string;
}

export interface FilterPage {
  events: LogEvent[];
  nextToken?: string;
  /** Throttling answers retried for this page. */
  throttled: number;
}

export interface PagerOptions {
  budget: RateBudget;
  /** Attempts per page when throttled; the backoff doubles from `backoffMs` up to `maxBackoffMs`. */
  maxAttempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  sleep?: (ms: number) => Promise<void>;
  onThrottle?: (attempt: number, waitMs: number) => void;
}

/**
 * Reads one `FilterLogEvents` page within the shared request budget. Pages hold at most 10,000
 * events or 1 MB and may be empty while still carrying a `nextToken`; the caller keeps going until
 * there is no token. `ThrottlingException` is retried with exponential backoff and full jitter.
 */
export async function readFilterPage(
  logs: CloudWatchLogsClient,
  query: FilterQuery,
  nextToken: string | undefined,
  options: PagerOptions,
): Promise<FilterPage> {
  const maxAttempts = options.maxAttempts ?? 10;
  const backoffMs = options.backoffMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 20_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
  const input: FilterLogEventsCommandInput = {
    logGroupName: query.logGroupName,
    startTime: query.startMs,
    // FilterLogEvents' endTime is inclusive; the slices are half-open.
    endTime: query.endMs - 1,
    ...(query.filterPattern ? { filterPattern: query.filterPattern } : {}),
    ...(query.logStreamNames?.length ? { logStreamNames: query.logStreamNames } : {}),
    ...(query.logStreamNamePrefix ? { logStreamNamePrefix: query.logStreamNamePrefix } : {}),
    ...(nextToken ? { nextToken } : {}),
  };
  let throttled = 0;
  for (let attempt = 1; ; attempt++) {
    await options.budget.take();
    try {
      const page = await logs.send(new FilterLogEventsCommand(input));
      const events: LogEvent[] = (page.events ?? []).map((event) => ({
        id: event.eventId ?? "",
        timestamp: event.timestamp ?? 0,
        message: event.message ?? "",
        logStream: event.logStreamName ?? "",
      }));
      return { events, ...(page.nextToken ? { nextToken: page.nextToken } : {}), throttled };
    } catch (error) {
      if (!isThrottling(error)) {
        const name = (error as Error).name;
        throw new CloudWatchReadError(
          `FilterLogEvents on ${query.logGroupName} failed with ${name}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      throttled += 1;
      options.budget.drain();
      if (attempt >= maxAttempts) {
        throw new CloudWatchThrottledError(
          `FilterLogEvents on ${query.logGroupName} was throttled ${attempt} times in a row; lower requestsPerSecond or concurrency`,
          { cause: error },
        );
      }
      const waitMs = Math.round(Math.random() * Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1)));
      options.onThrottle?.(attempt, waitMs);
      await sleep(waitMs);
    }
  }
}

function isThrottling(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  const message = (error as { message?: string })?.message ?? "";
  return name === "ThrottlingException" || (name === "LimitExceededException" && /rate/i.test(message));
}
