import type { LambdaClient } from "@aws-sdk/client-lambda";
import { lambdaFunctionName } from "./function-labels.ts";
import { listFunctions, lookupError, type ThrottleBackoff } from "./function-lookup.ts";
import { LookupCache } from "./lookup-cache.ts";

/**
 * Which function logs to a log group. Lambda writes to `/aws/lambda/<function>` unless the
 * function's `LoggingConfig.LogGroup` names another group (`/custom/payments`), and only the
 * function's configuration says so. So for a group outside `/aws/lambda/`, the functions of the
 * region are listed (`ListFunctions`, 50 a page) into a map of custom log group → function, kept
 * for the cache period: one listing per warm container every 5 minutes, and none while only
 * `/aws/lambda/*` groups are shipped.
 */

/** Custom log group → the functions that name it in `LoggingConfig.LogGroup`. */
export type CustomLogGroups = Map<string, string[]>;

/**
 * The map of a region's custom log groups, under one key per account and region (each is listed as
 * a whole), or the error of the last listing, kept for the negative cache period.
 */
export class CustomLogGroupCache extends LookupCache<{ groups: CustomLogGroups } | { failure: Error }> {}

/** The map of this container, shared by every invocation while it is warm. */
export const containerCustomLogGroupCache = new CustomLogGroupCache();

/** The key of the one account and region a caller reads (the backfill and the CLI). */
const WHOLE_REGION = "region";

/** Every function's custom log group (one that is not its `/aws/lambda/<name>`). */
export async function listCustomLogGroups(
  lambda: LambdaClient,
  backoff: Partial<ThrottleBackoff> = {},
): Promise<CustomLogGroups> {
  const groups: CustomLogGroups = new Map();
  for (const fn of await listFunctions(lambda, backoff)) {
    const logGroup = fn.LoggingConfig?.LogGroup;
    if (!fn.FunctionName || !logGroup || logGroup === `/aws/lambda/${fn.FunctionName}`) continue;
    groups.set(logGroup, [...(groups.get(logGroup) ?? []), fn.FunctionName]);
  }
  return groups;
}

/**
 * The function whose logs go to `logGroup`: by the group's name for `/aws/lambda/<name>`, else the
 * one function that names it in `LoggingConfig.LogGroup`. A group several functions share gives
 * undefined: one stream cannot carry each function's labels. A failed listing uses the map listed
 * before, if any; without one it throws {@link FunctionLookupError}, and throws it again without
 * listing until the negative cache period (1 minute) ends. `listingKey` names the account and
 * region `lambda` reads, when one cache serves several (the live shipper's source accounts).
 */
export async function functionOfLogGroup(
  lambda: LambdaClient,
  logGroup: string,
  cache: CustomLogGroupCache = containerCustomLogGroupCache,
  backoff: Partial<ThrottleBackoff> = {},
  listingKey = WHOLE_REGION,
): Promise<string | undefined> {
  // Lambda's own groups name their function, or none of this region (Lambda@Edge replicas).
  if (logGroup.startsWith("/aws/lambda/")) return lambdaFunctionName(logGroup);
  const functions = (await customLogGroups(lambda, cache, backoff, listingKey)).get(logGroup);
  return functions?.length === 1 ? functions[0] : undefined;
}

async function customLogGroups(
  lambda: LambdaClient,
  cache: CustomLogGroupCache,
  backoff: Partial<ThrottleBackoff>,
  key: string,
): Promise<CustomLogGroups> {
  const cached = cache.get(key)?.value;
  if (cached && "failure" in cached) throw cached.failure;
  if (cached) return cached.groups;
  try {
    const groups = await listCustomLogGroups(lambda, backoff);
    cache.set(key, { groups }, true);
    return groups;
  } catch (error) {
    const stale = cache.stale(key)?.value;
    if (stale && "groups" in stale) return stale.groups;
    // The same failure until the negative cache period ends, rather than a listing on every
    // invocation (a role without lambda:ListFunctions), or an empty map that would pass for "no
    // function" (and could route a group to the wrong tenant).
    const failure = lookupError("ListFunctions", error);
    cache.set(key, { failure }, false);
    throw failure;
  }
}
