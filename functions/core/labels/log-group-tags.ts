import { type CloudWatchLogsClient, ListTagsForResourceCommand } from "@aws-sdk/client-cloudwatch-logs";

/**
 * Log group tags, looked up with `ListTagsForResource` on the log group ARN (the older
 * `ListTagsLogGroup` is deprecated) and cached per warm container: a busy shipper would
 * otherwise call it for every batch and hit the CloudWatch Logs API quota.
 */

export interface TagCacheOptions {
  /** How long a found tag set is used before it is looked up again. */
  ttlMs: number;
  /** How long "no such log group" is remembered (negative caching). */
  negativeTtlMs: number;
}

export const DEFAULT_TAG_CACHE_OPTIONS: TagCacheOptions = { ttlMs: 5 * 60_000, negativeTtlMs: 60_000 };

interface CacheEntry {
  tags: Record<string, string>;
  expiresAt: number;
  found: boolean;
}

export interface TagLookupResult {
  tags: Record<string, string>;
  /** false when the log group does not exist (or no longer does). */
  found: boolean;
  cached: boolean;
}

export class LogGroupTagCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly options: TagCacheOptions;
  readonly #now: () => number;

  constructor(options: Partial<TagCacheOptions> = {}, now: () => number = Date.now) {
    this.options = { ...DEFAULT_TAG_CACHE_OPTIONS, ...options };
    this.#now = now;
  }

  get(arn: string): CacheEntry | undefined {
    const entry = this.#entries.get(arn);
    return entry && entry.expiresAt > this.#now() ? entry : undefined;
  }

  /** An expired entry, used when a fresh lookup fails rather than shipping without labels. */
  stale(arn: string): CacheEntry | undefined {
    return this.#entries.get(arn);
  }

  set(arn: string, tags: Record<string, string>, found: boolean): void {
    const ttl = found ? this.options.ttlMs : this.options.negativeTtlMs;
    this.#entries.set(arn, { tags, found, expiresAt: this.#now() + ttl });
  }

  clear(): void {
    this.#entries.clear();
  }
}

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

function partitionOf(region: string): string {
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
  if (cached) return { tags: cached.tags, found: cached.found, cached: true };
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
    if (stale) return { tags: stale.tags, found: stale.found, cached: true };
    throw error;
  }
}
