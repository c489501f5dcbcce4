import { type CloudWatchLogsClient, ListTagsForResourceCommand } from "@aws-sdk/client-cloudwatch-logs";
import { LookupCache } from "./lookup-cache.ts";

/**
 * Log group tags, looked up with `ListTagsForResource` on the log group ARN (the older
 * `ListTagsLogGroup` is deprecated) and cached per warm container (see lookup-cache.ts).
 */

export interface TagLookupResult {
  tags: Record<string, string>;
  /** false when the log group does not exist (or no longer does). */
  found: boolean;
  cached: boolean;
}

/** Tags by log group ARN. */
export class LogGroupTagCache extends LookupCache<Record<string, string>> {}

/** The cache of this container, shared by every invocation while it is warm. */
export const containerTagCache = new LogGroupTagCache();

/**
 * The log group ARN that `ListTagsForResource` accepts: without the trailing `:*` that
 * `DescribeLogGroups` shows, built from the name when a name is given.
 */
export function logGroupArn(
  logGroupArnOrName: string,
  context: { accountId: string; region: string; partition?: string },
): string {
  if (logGroupArnOrName.startsWith("arn:")) return logGroupArnOrName.replace(/:\*$/, "");
  const partition = context.partition ?? partitionOf(context.region);
  return `arn:${partition}:logs:${context.region}:${context.accountId}:log-group:${logGroupArnOrName}`;
}

/** The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`). */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

export async function getLogGroupTags(
  logs: CloudWatchLogsClient,
  logGroupArnOrName: string,
  context: { accountId: string; region: string; partition?: string },
  cache: LogGroupTagCache = containerTagCache,
): Promise<TagLookupResult> {
  const arn = logGroupArn(logGroupArnOrName, context);
  const cached = cache.get(arn);
  if (cached) return { tags: cached.value, found: cached.found, cached: true };
  try {
    const response = await logs.send(new ListTagsForResourceCommand({ resourceArn: arn }));
    const tags = response.tags ?? {};
    cache.set(arn, tags, true);
    return { tags, found: true, cached: false };
  } catch (error) {
    if ((error as { name?: string }).name === "ResourceNotFoundException") {
      cache.set(arn, {}, false);
      return { tags: {}, found: false, cached: false };
    }
    const stale = cache.stale(arn);
    if (stale) return { tags: stale.value, found: stale.found, cached: true };
    throw error;
  }
}
