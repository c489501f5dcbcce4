import * as z from "zod/mini";
import { parseTagSelector } from "../cloudwatch/tag-selector.ts";
import { InputError } from "../errors.ts";
import { parseLabelOptions } from "../labels/labels.ts";
import "../mini-schema.ts";
import type { GroupRef } from "../storage/chunk-format.ts";
import { requestErrorFrom } from "./request-errors.ts";
import { parseStartEnd, parseTimeRange } from "./time-range.ts";

/**
 * What a backfill (or a gap re-read from CloudWatch) is asked to do, as the CLI, the state
 * machine's input and the local runner give it. {@link parseBackfillRequest} checks everything that
 * can be checked without AWS, so a caller can refuse bad input before starting anything; the plan
 * step then checks the log groups themselves (existence, retention).
 */

/** FilterLogEvents may not show an event until minutes after its timestamp (ingestion delay). */
export const DEFAULT_INGESTION_DELAY_SECONDS = 300;
/** Leaves one request per second of CloudWatch's ~5/s account budget to everything else. */
export const DEFAULT_REQUESTS_PER_SECOND = 4;
export const DEFAULT_CONCURRENCY = 4;
/** Slices per child execution: keeps one execution far below the 25,000-event history limit. */
export const DEFAULT_SLICES_PER_PART = 100;

const positiveInt = (what: string, max: number) =>
  z
    .number({ message: `${what} must be a number` })
    .check(
      z.int(`${what} must be a whole number`),
      z.minimum(1, `${what} must be at least 1`),
      z.maximum(max, `${what} must be at most ${max}`),
    );

const ACCOUNT_ID = /^\d{12}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** arn:<partition>:logs:<region>:<account>:log-group:<name>[:*]; log group names hold [.\-_/#A-Za-z0-9]. */
const LOG_GROUP_ARN =
  /^arn:aws[a-z-]*:logs:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):log-group:([.\-_/#A-Za-z0-9]+?)(?::\*)?$/;

const envRecord = z.record(z.string(), z.string(), { message: "expected an object of NAME: value strings" });

const requestSchema = z.strictObject({
  runId: z.optional(
    z
      .string()
      .check(
        z.regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/, "runId may hold letters, digits, - and _ (at most 80)"),
      ),
  ),
  logGroupNames: z.optional(z.array(z.string().check(z.minLength(1, "a log group name cannot be empty")))),
  account: z.optional(z.string()),
  region: z.optional(z.string()),
  logGroupNamePrefix: z.optional(z.string().check(z.minLength(1, "logGroupNamePrefix cannot be empty"))),
  tagSelector: z.optional(z.string()),
  range: z.optional(z.string()),
  start: z.optional(z.string()),
  end: z.optional(z.string()),
  filterPattern: z.optional(z.string()),
  logStreamNames: z.optional(
    z
      .array(z.string().check(z.minLength(1)))
      .check(z.maxLength(100, "FilterLogEvents takes at most 100 logStreamNames")),
  ),
  logStreamNamePrefix: z.optional(z.string().check(z.minLength(1))),
  loki: z.optional(envRecord),
  labels: z.optional(envRecord),
  sliceHours: z.optional(positiveInt("sliceHours", 24)),
  concurrency: z.optional(positiveInt("concurrency", 40)),
  requestsPerSecond: z.optional(
    z
      .number({ message: "requestsPerSecond must be a number" })
      .check(
        z.positive("requestsPerSecond must be above 0"),
        z.maximum(
          25,
          "requestsPerSecond above 25 only earns throttling (CloudWatch allows about 5 per account)",
        ),
      ),
  ),
  ingestionDelaySeconds: z.optional(z.number().check(z.int(), z.minimum(0), z.maximum(3600))),
  bytesPerSecond: z.optional(z.number().check(z.positive("bytesPerSecond must be above 0"))),
  perStreamBytesPerSecond: z.optional(
    z.number().check(z.positive("perStreamBytesPerSecond must be above 0")),
  ),
  slicesPerPart: z.optional(positiveInt("slicesPerPart", 200)),
  maxEventsPerChunk: z.optional(positiveInt("maxEventsPerChunk", 50_000)),
  maxPagesPerInvocation: z.optional(positiveInt("maxPagesPerInvocation", 1000)),
  dryRun: z.optional(z.boolean()),
  includeRefusedTenants: z.optional(z.boolean()),
});

export type BackfillRequestInput = z.input<typeof requestSchema>;

export interface LogGroupSelector {
  /** Names in `account` and `region`. */
  names?: string[];
  /** Groups named by their ARN, each in its own account and region. */
  arns?: Required<GroupRef>[];
  prefix?: string;
  tagSelector?: string;
  /**
   * Where `names`, `prefix` and `tagSelector` look; absent: the functions' own account (region).
   * Another account is read through its reader role.
   */
  account?: string;
  region?: string;
}

export interface BackfillRequest {
  runId?: string;
  selector: LogGroupSelector;
  startMs: number;
  /** Exclusive; already moved back from `requestedEndMs` by the ingestion delay when needed. */
  endMs: number;
  requestedEndMs: number;
  filterPattern?: string;
  logStreamNames?: string[];
  logStreamNamePrefix?: string;
  /** `LOKI_*` settings that override the function's environment for this run. */
  loki: Record<string, string>;
  /** `LABEL_*` settings that override the function's environment for this run. */
  labels: Record<string, string>;
  sliceHours: number;
  concurrency: number;
  requestsPerSecond: number;
  ingestionDelayMs: number;
  /** Pace of the replay into Loki, whole run (default: pacing.ts, half of Loki's default tenant rate). */
  bytesPerSecond?: number;
  perStreamBytesPerSecond?: number;
  slicesPerPart: number;
  maxEventsPerChunk: number;
  maxPagesPerInvocation: number;
  dryRun: boolean;
  /**
   * Export the groups whose tenant tag names a tenant outside LOKI_TENANTS_ALLOWED too (their events
   * can only go to rejected/); by default the plan names them and leaves them out.
   */
  includeRefusedTenants?: boolean;
}

/** Checks a backfill request; throws one {@link InputError} that lists every mistake. */
export function parseBackfillRequest(input: unknown, options: { now?: number } = {}): BackfillRequest {
  const now = options.now ?? Date.now();
  const parsed = requestSchema.safeParse(input);
  if (!parsed.success) throw requestErrorFrom("backfill request", parsed.error);
  const request = parsed.data;
  const problems: string[] = [];

  const selector = selectorOf(request, problems);
  const { startMs, requestedEndMs } = timeRangeOf(request, now, problems);
  const ingestionDelayMs = (request.ingestionDelaySeconds ?? DEFAULT_INGESTION_DELAY_SECONDS) * 1000;
  const endMs = Math.min(requestedEndMs, now - ingestionDelayMs);
  if (requestedEndMs > now + 60_000) {
    problems.push(
      `the range ends in the future (${new Date(requestedEndMs).toISOString()}): end it at now or earlier`,
    );
  } else if (problems.length === 0 && endMs <= startMs) {
    problems.push(
      `the range lies within the last ${ingestionDelayMs / 1000} s, which CloudWatch may not show yet (ingestion delay): start it earlier or lower ingestionDelaySeconds`,
    );
  }
  if (request.labels) {
    try {
      parseLabelOptions(request.labels);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (problems.length > 0) throw new InputError(`Invalid backfill request: ${problems.join("; ")}`);

  return {
    ...(request.runId ? { runId: request.runId } : {}),
    selector,
    startMs,
    endMs,
    requestedEndMs,
    ...(request.filterPattern ? { filterPattern: request.filterPattern } : {}),
    ...(request.logStreamNames?.length ? { logStreamNames: request.logStreamNames } : {}),
    ...(request.logStreamNamePrefix ? { logStreamNamePrefix: request.logStreamNamePrefix } : {}),
    loki: request.loki ?? {},
    labels: request.labels ?? {},
    sliceHours: request.sliceHours ?? 1,
    concurrency: request.concurrency ?? DEFAULT_CONCURRENCY,
    requestsPerSecond: request.requestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND,
    ingestionDelayMs,
    ...(request.bytesPerSecond ? { bytesPerSecond: request.bytesPerSecond } : {}),
    ...(request.perStreamBytesPerSecond ? { perStreamBytesPerSecond: request.perStreamBytesPerSecond } : {}),
    slicesPerPart: request.slicesPerPart ?? DEFAULT_SLICES_PER_PART,
    maxEventsPerChunk: request.maxEventsPerChunk ?? 5000,
    maxPagesPerInvocation: request.maxPagesPerInvocation ?? 50,
    dryRun: request.dryRun ?? false,
    ...(request.includeRefusedTenants ? { includeRefusedTenants: true } : {}),
  };
}

type RawRequest = z.infer<typeof requestSchema>;

/** Which log groups the request chooses; its mistakes go to `problems`. */
function selectorOf(request: RawRequest, problems: string[]): LogGroupSelector {
  const selector: LogGroupSelector = {};
  if (request.account !== undefined) {
    if (ACCOUNT_ID.test(request.account)) selector.account = request.account;
    else problems.push(`account must be a 12-digit AWS account id, got ${JSON.stringify(request.account)}`);
  }
  if (request.region !== undefined) {
    if (REGION.test(request.region)) selector.region = request.region;
    else
      problems.push(`region must be an AWS region such as eu-west-1, got ${JSON.stringify(request.region)}`);
  }
  const { names, arns } = namesAndArns(request.logGroupNames ?? [], problems);
  if (names.length > 0) selector.names = names;
  if (arns.length > 0) selector.arns = arns;
  if (request.logGroupNamePrefix) selector.prefix = request.logGroupNamePrefix;
  if (request.tagSelector !== undefined) {
    try {
      parseTagSelector(request.tagSelector);
      selector.tagSelector = request.tagSelector;
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (!request.logGroupNames?.length && !selector.prefix && request.tagSelector === undefined) {
    problems.push(
      "choose log groups: give logGroupNames, logGroupNamePrefix or tagSelector (e.g. team=payments)",
    );
  }
  if (request.logGroupNames?.length && (selector.prefix || selector.tagSelector)) {
    problems.push(
      "logGroupNames cannot be combined with logGroupNamePrefix or tagSelector: use one way to choose",
    );
  }
  if (request.logStreamNames?.length && request.logStreamNamePrefix) {
    problems.push(
      "logStreamNames and logStreamNamePrefix are mutually exclusive in FilterLogEvents: give only one of them",
    );
  }

  return selector;
}

/** The log group an ARN names, with its account and region; undefined when it is not a log group ARN. */
export function parseLogGroupArn(text: string): Required<GroupRef> | undefined {
  const match = LOG_GROUP_ARN.exec(text);
  if (!match) return undefined;
  const [, region, account, logGroup] = match as unknown as [string, string, string, string];
  return { logGroup, account, region };
}

/** The plain names and the ARNs among `logGroupNames`, each once; a malformed ARN goes to `problems`. */
function namesAndArns(
  logGroupNames: string[],
  problems: string[],
): { names: string[]; arns: Required<GroupRef>[] } {
  const names = new Set<string>();
  const arns = new Map<string, Required<GroupRef>>();
  for (const name of logGroupNames) {
    if (!name.startsWith("arn:")) {
      names.add(name);
      continue;
    }
    const arn = parseLogGroupArn(name);
    if (!arn) {
      problems.push(
        `${JSON.stringify(name)} is not a log group ARN: expected arn:aws:logs:<region>:<12-digit account>:log-group:<name> (with or without :*)`,
      );
      continue;
    }
    arns.set(`${arn.account}:${arn.region}:${arn.logGroup}`, arn);
  }
  return { names: [...names], arns: [...arns.values()] };
}

/** The requested time range; its mistakes go to `problems` (and the range is then empty). */
function timeRangeOf(
  request: RawRequest,
  now: number,
  problems: string[],
): { startMs: number; requestedEndMs: number } {
  let startMs = 0;
  let requestedEndMs = 0;
  try {
    if (request.range !== undefined && (request.start !== undefined || request.end !== undefined)) {
      throw new InputError("give either range or start/end, not both");
    }
    if (request.range === undefined && request.start === undefined) {
      throw new InputError('give a time range: range ("7d", "2026-11-01..2026-11-08") or start (and end)');
    }
    const range =
      request.range !== undefined
        ? parseTimeRange(request.range, now)
        : parseStartEnd(request.start as string, request.end, now);
    startMs = range.startMs;
    requestedEndMs = range.endMs;
  } catch (error) {
    problems.push((error as Error).message);
  }

  return { startMs, requestedEndMs };
}
