import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
// Types only: the SDK packages load with the first look-up, which a batch of a group that belongs
// to no function never makes.
import type { FunctionConfiguration, LambdaClient, LambdaClientConfig } from "@aws-sdk/client-lambda";
import type {
  ResourceGroupsTaggingAPIClient,
  ResourceGroupsTaggingAPIClientConfig,
} from "@aws-sdk/client-resource-groups-tagging-api";
import type { RateBudget } from "../cloudwatch/rate-budget.ts";
import { deferredClient } from "../deferred-client.ts";
import { LokiShipperError } from "../errors.ts";
import { type FunctionFacts, NO_FUNCTION } from "./function-labels.ts";
import { LookupCache } from "./lookup-cache.ts";

/**
 * Looks up the facts (tags, runtime) of the Lambda functions behind log groups, cached like the
 * log group tags, backing off when Lambda or the Tagging API throttle.
 *
 * Two call patterns, chosen by how many functions are wanted at once:
 * - `GetFunction`, one call per function, gives tags and runtime: the live shipper's case (one
 *   log group per invocation) and small backfills.
 * - For many functions, `ListFunctions` (50 functions per page: runtimes, and which functions
 *   exist) plus `tag:GetResources` (100 tagged functions per page: tags) cost
 *   ceil(functions / 50) + ceil(tagged functions / 100) calls for the whole region, against one
 *   call per function: 300 functions take 9 calls instead of 300.
 */

/** Function facts by function name. */
export class FunctionFactsCache extends LookupCache<FunctionFacts> {}

/** The cache of this container, shared by every invocation while it is warm. */
export const containerFunctionCache = new FunctionFactsCache();

/** Up to this many functions are looked up one by one; more are listed in bulk. */
export const BULK_LOOKUP_THRESHOLD = 20;

/** A function look-up failed for another reason than throttling, or stayed throttled. */
export class FunctionLookupError extends LokiShipperError {}

export interface ThrottleBackoff {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  sleep?: (ms: number) => Promise<void>;
  onThrottle?: (call: string, attempt: number, waitMs: number) => void;
  /** Paces the calls (a backfill's plan looks up many functions in a row). */
  budget?: RateBudget;
}

export const DEFAULT_THROTTLE_BACKOFF: ThrottleBackoff = {
  maxAttempts: 8,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
};

export interface FunctionLookupClients {
  lambda: LambdaClient;
  tagging: ResourceGroupsTaggingAPIClient;
}

/** The facts of one function by `GetFunction`; a missing function gives {@link NO_FUNCTION}. */
export async function getFunctionFacts(
  lambda: LambdaClient,
  functionName: string,
  cache: FunctionFactsCache = containerFunctionCache,
  backoff: Partial<ThrottleBackoff> = {},
): Promise<FunctionFacts & { cached: boolean }> {
  const cached = cache.get(functionName);
  if (cached) return { ...cached.value, cached: true };
  try {
    const { GetFunctionCommand } = await import("@aws-sdk/client-lambda");
    const answer = await withThrottleBackoff(
      `GetFunction ${functionName}`,
      () => lambda.send(new GetFunctionCommand({ FunctionName: functionName })),
      backoff,
    );
    const runtime = answer.Configuration?.Runtime;
    const facts: FunctionFacts = { found: true, tags: answer.Tags ?? {}, ...(runtime ? { runtime } : {}) };
    cache.set(functionName, facts, true);
    return { ...facts, cached: false };
  } catch (error) {
    if (errorName(error) === "ResourceNotFoundException") {
      cache.set(functionName, NO_FUNCTION, false);
      return { ...NO_FUNCTION, cached: false };
    }
    const stale = cache.stale(functionName);
    if (stale) return { ...stale.value, cached: true };
    throw lookupError(`GetFunction on ${functionName}`, error);
  }
}

/**
 * The facts of many functions, by the cheaper call pattern (see above). Every wanted name is in
 * the answer; one that does not exist maps to {@link NO_FUNCTION}.
 */
export async function getFunctionFactsInBulk(
  clients: FunctionLookupClients,
  functionNames: string[],
  cache: FunctionFactsCache = containerFunctionCache,
  backoff: Partial<ThrottleBackoff> = {},
): Promise<Map<string, FunctionFacts>> {
  const wanted = [...new Set(functionNames)].filter((name) => !cache.get(name));
  const facts = new Map<string, FunctionFacts>();
  if (wanted.length > BULK_LOOKUP_THRESHOLD) {
    const runtimes = await listFunctionRuntimes(clients.lambda, backoff);
    const tags = await listFunctionTags(clients.tagging, backoff);
    for (const name of wanted) {
      const found = runtimes.get(name);
      const value: FunctionFacts = found
        ? { found: true, tags: tags.get(name) ?? {}, ...(found.runtime ? { runtime: found.runtime } : {}) }
        : NO_FUNCTION;
      cache.set(name, value, found !== undefined);
    }
  }
  for (const name of new Set(functionNames)) {
    const { cached: _cached, ...value } = await getFunctionFacts(clients.lambda, name, cache, backoff);
    facts.set(name, value);
  }
  return facts;
}

/** Every function of the region with its runtime (undefined for container images). */
async function listFunctionRuntimes(
  lambda: LambdaClient,
  backoff: Partial<ThrottleBackoff>,
): Promise<Map<string, { runtime?: string }>> {
  const runtimes = new Map<string, { runtime?: string }>();
  for (const fn of await listFunctions(lambda, backoff))
    if (fn.FunctionName) runtimes.set(fn.FunctionName, fn.Runtime ? { runtime: fn.Runtime } : {});
  return runtimes;
}

/** Every function of the region, by `ListFunctions` (50 a page), backing off when throttled. */
export async function listFunctions(
  lambda: LambdaClient,
  backoff: Partial<ThrottleBackoff>,
): Promise<FunctionConfiguration[]> {
  const { ListFunctionsCommand } = await import("@aws-sdk/client-lambda");
  const functions: FunctionConfiguration[] = [];
  let marker: string | undefined;
  do {
    const page = await withThrottleBackoff(
      "ListFunctions",
      () => lambda.send(new ListFunctionsCommand({ MaxItems: 50, ...(marker ? { Marker: marker } : {}) })),
      backoff,
    ).catch((error: unknown) => {
      throw lookupError("ListFunctions", error);
    });
    functions.push(...(page.Functions ?? []));
    marker = page.NextMarker;
  } while (marker);
  return functions;
}

/** The tags of every tagged function of the region, by function name. */
async function listFunctionTags(
  tagging: ResourceGroupsTaggingAPIClient,
  backoff: Partial<ThrottleBackoff>,
): Promise<Map<string, Record<string, string>>> {
  const { GetResourcesCommand } = await import("@aws-sdk/client-resource-groups-tagging-api");
  const tagsByName = new Map<string, Record<string, string>>();
  let token: string | undefined;
  do {
    const page = await withThrottleBackoff(
      "tag:GetResources",
      () =>
        tagging.send(
          new GetResourcesCommand({
            ResourceTypeFilters: ["lambda:function"],
            ResourcesPerPage: 100,
            ...(token ? { PaginationToken: token } : {}),
          }),
        ),
      backoff,
    ).catch((error: unknown) => {
      throw lookupError("tag:GetResources", error);
    });
    for (const mapping of page.ResourceTagMappingList ?? []) {
      // arn:aws:lambda:<region>:<account>:function:<name>
      const name = mapping.ResourceARN?.split(":")[6];
      if (!name) continue;
      const tags: Record<string, string> = {};
      for (const tag of mapping.Tags ?? []) if (tag.Key) tags[tag.Key] = tag.Value ?? "";
      tagsByName.set(name, tags);
    }
    token = page.PaginationToken || undefined;
  } while (token);
  return tagsByName;
}

/**
 * Runs `call`, waiting with exponential backoff and full jitter while it is throttled. Lambda
 * answers `TooManyRequestsException` (429), the Tagging API `ThrottledException`.
 */
export async function withThrottleBackoff<T>(
  callName: string,
  call: () => Promise<T>,
  options: Partial<ThrottleBackoff> = {},
): Promise<T> {
  const backoff = { ...DEFAULT_THROTTLE_BACKOFF, ...options };
  const sleep = backoff.sleep ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    await backoff.budget?.take();
    try {
      return await call();
    } catch (error) {
      if (!isThrottling(error) || attempt >= backoff.maxAttempts) throw error;
      backoff.budget?.drain();
      const waitMs = Math.round(
        Math.random() * Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** (attempt - 1)),
      );
      backoff.onThrottle?.(callName, attempt, waitMs);
      await sleep(waitMs);
    }
  }
}

const THROTTLING_NAMES = new Set([
  "TooManyRequestsException",
  "ThrottlingException",
  "ThrottledException",
  "Throttling",
]);

export function isThrottling(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return THROTTLING_NAMES.has(errorName(error)) || status === 429;
}

function errorName(error: unknown): string {
  return (error as { name?: string })?.name ?? "";
}

export function lookupError(call: string, error: unknown): FunctionLookupError {
  if (error instanceof FunctionLookupError) return error;
  const hint = isThrottling(error)
    ? "still throttled after every retry; try again later"
    : "check the IAM permissions (lambda:GetFunction, lambda:ListFunctions, tag:GetResources) or set LABEL_LAMBDA_FUNCTION=false";
  return new FunctionLookupError(
    `${call} failed with ${errorName(error)}: ${(error as Error).message} (${hint})`,
    {
      cause: error,
    },
  );
}

/**
 * Clients for the function look-ups with the region, credentials and endpoint of a CloudWatch Logs
 * client: callers that were handed only that client (the local workflow runner, the CLI) look up
 * functions in the same account and region, or the same emulator.
 */
export function functionLookupClientsLike(logs: CloudWatchLogsClient): FunctionLookupClients {
  const config = {
    region: logs.config.region,
    credentials: logs.config.credentials,
    ...(logs.config.isCustomEndpoint && logs.config.endpoint ? { endpoint: logs.config.endpoint } : {}),
  };
  return { lambda: lambdaClientOnFirstUse(config), tagging: taggingClientOnFirstUse(config) };
}

/**
 * The Lambda client, loaded and created on its first call: it serves only the labels of functions'
 * log groups, so it stays out of the cold start (deferred-client.ts).
 */
export function lambdaClientOnFirstUse(config: LambdaClientConfig = {}): LambdaClient {
  return deferredClient<LambdaClient>(
    async () => new (await import("@aws-sdk/client-lambda")).LambdaClient(config),
  );
}

/** The tagging client of the bulk function look-up, loaded and created on its first call. */
export function taggingClientOnFirstUse(
  config: ResourceGroupsTaggingAPIClientConfig = {},
): ResourceGroupsTaggingAPIClient {
  return deferredClient<ResourceGroupsTaggingAPIClient>(
    async () =>
      new (await import("@aws-sdk/client-resource-groups-tagging-api")).ResourceGroupsTaggingAPIClient(
        config,
      ),
  );
}
