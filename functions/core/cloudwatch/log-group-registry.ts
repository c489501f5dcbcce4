import {
  type CloudWatchLogsClient,
  DeleteSubscriptionFilterCommand,
  DescribeSubscriptionFiltersCommand,
  ListTagsForResourceCommand,
  type LogGroup,
  PutSubscriptionFilterCommand,
  paginateDescribeLogGroups,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { InputError, LokiShipperError } from "../errors.ts";
import { matchesTagSelector, parseTagSelector, type TagMatcher } from "./tag-selector.ts";

/**
 * Links log groups to the shipper (a subscription filter to its Lambda) and unlinks them. Used by
 * the deploy-time registrar and by the CLI's `link`/`unlink`. Every change is planned first, so a
 * dry run shows exactly what would happen; nothing outside the plan is touched (never retention,
 * never another tool's filters, never tags that were not asked for).
 */

/** Where linked log groups deliver their events. */
export interface SubscriptionTarget {
  /** ARN of the shipper Lambda. */
  destinationArn: string;
  /** Name of the subscription filter this tool owns on each linked group. */
  filterName: string;
  /** CloudWatch Logs filter pattern; "" forwards every event. */
  filterPattern?: string;
}

/**
 * Which log groups to act on. Names and prefixes add groups (union); a tag selector, when given,
 * keeps only the groups whose tags match it. A selection with neither names, prefixes nor tag
 * selector is refused, so that a typo can never select every log group of the account.
 */
export interface LogGroupSelection {
  names?: string[];
  prefixes?: string[];
  /** LogQL-style matchers on the log group's tags (see tag-selector.ts), as text or parsed. */
  tagSelector?: string | TagMatcher[];
}

export interface RegistryOptions {
  /**
   * Log groups never subscribed: the pipeline's own groups (a subscription would feed the shipper
   * its own logs). The destination function's default group, `/aws/lambda/<name>`, is always skipped.
   */
  excludedLogGroups?: readonly string[];
  /** Tags to set on the groups being linked; only when asked for. */
  tags?: Record<string, string>;
  /** How many tag or filter look-ups run at once (CloudWatch Logs control-plane quotas are low). */
  concurrency?: number;
}

export type PlannedAction = "subscribe" | "update" | "unsubscribe" | "unchanged" | "skip";

export interface PlannedChange {
  logGroup: string;
  action: PlannedAction;
  /** Why this action, in words a user reads in a dry run. */
  reason: string;
  /** Subscription filters of this tool to delete (unsubscribe). */
  filterNames?: string[];
  /** Tags to set (link with tags), only those that differ from the current ones. */
  tagsToSet?: Record<string, string>;
  /** ARN of the log group without the trailing `:*`, for tagging. */
  logGroupArn?: string;
}

export interface RegistryPlan {
  operation: "link" | "unlink";
  target: SubscriptionTarget;
  changes: PlannedChange[];
}

export interface RegistryOutcome {
  applied: PlannedChange[];
  failed: { change: PlannedChange; error: string }[];
}

/** One log group found by a selection, with its tags when the selection needed them. */
export interface SelectedLogGroup {
  name: string;
  arn: string;
  tags?: Record<string, string>;
}

/** The reason of a planned `skip` for a log group named in the selection that does not exist. */
export const LOG_GROUP_NOT_FOUND = "log group not found";

/** Raised when a log group cannot be linked or unlinked; carries the AWS error as `cause`. */
export class LogGroupRegistryError extends LokiShipperError {}

// CloudWatch Logs allows two subscription filters per log group.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html
const MAX_SUBSCRIPTION_FILTERS = 2;
const DEFAULT_CONCURRENCY = 4;

/** Lists the log groups a selection picks, sorted by name. */
export async function selectLogGroups(
  logs: CloudWatchLogsClient,
  selection: LogGroupSelection,
  options: Pick<RegistryOptions, "concurrency"> = {},
): Promise<SelectedLogGroup[]> {
  const matchers = selectionMatchers(selection);
  const names = new Set(selection.names ?? []);
  const prefixes = selection.prefixes ?? [];
  const candidates = new Map<string, SelectedLogGroup>();
  const remember = (group: LogGroup) => {
    if (!group.logGroupName) return;
    candidates.set(group.logGroupName, { name: group.logGroupName, arn: logGroupArnOf(group) });
  };
  if (names.size === 0 && prefixes.length === 0) {
    for await (const page of paginateDescribeLogGroups({ client: logs }, {}))
      page.logGroups?.forEach(remember);
  }
  for (const prefix of prefixes) {
    for await (const page of paginateDescribeLogGroups({ client: logs }, { logGroupNamePrefix: prefix })) {
      page.logGroups?.forEach(remember);
    }
  }
  for (const name of names) {
    for await (const page of paginateDescribeLogGroups({ client: logs }, { logGroupNamePrefix: name })) {
      page.logGroups?.filter((group) => group.logGroupName === name).forEach(remember);
    }
  }
  let selected = [...candidates.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (matchers) {
    await forEachLimited(selected, options.concurrency ?? DEFAULT_CONCURRENCY, async (group) => {
      group.tags = await readTags(logs, group.arn);
    });
    selected = selected.filter((group) => matchesTagSelector(group.tags ?? {}, matchers));
  }
  return selected;
}

/** True when a log group, with its tags, belongs to a selection (used for groups created later). */
export function selectionIncludes(
  selection: LogGroupSelection,
  group: { name: string; tags: Record<string, string> },
): boolean {
  const matchers = selectionMatchers(selection);
  const names = selection.names ?? [];
  const prefixes = selection.prefixes ?? [];
  const byName =
    (names.length === 0 && prefixes.length === 0) ||
    names.includes(group.name) ||
    prefixes.some((prefix) => group.name.startsWith(prefix));
  return byName && (!matchers || matchesTagSelector(group.tags, matchers));
}

/** Plans the subscription of every selected log group to the target. Changes nothing. */
export async function planLink(
  logs: CloudWatchLogsClient,
  selection: LogGroupSelection,
  target: SubscriptionTarget,
  options: RegistryOptions = {},
): Promise<RegistryPlan> {
  const groups = await selectLogGroups(logs, selection, options);
  const changes = await mapLimited(groups, options.concurrency ?? DEFAULT_CONCURRENCY, (group) =>
    planLinkOne(logs, group, target, options),
  );
  return { operation: "link", target, changes: [...changes, ...missingNames(selection, groups)] };
}

/** Plans the removal of this tool's subscription filters from every selected log group. Changes nothing. */
export async function planUnlink(
  logs: CloudWatchLogsClient,
  selection: LogGroupSelection,
  target: SubscriptionTarget,
  options: Pick<RegistryOptions, "concurrency"> = {},
): Promise<RegistryPlan> {
  const groups = await selectLogGroups(logs, selection, options);
  const changes = await mapLimited(groups, options.concurrency ?? DEFAULT_CONCURRENCY, async (group) => {
    const ours = (await readFilters(logs, group.name)).filter((filter) => isOurs(filter, target));
    if (ours.length === 0) {
      return {
        logGroup: group.name,
        action: "unchanged",
        reason: "not subscribed to the shipper",
      } as PlannedChange;
    }
    return {
      logGroup: group.name,
      action: "unsubscribe",
      reason: `delete subscription filter ${ours.map((filter) => filter.filterName).join(", ")}`,
      filterNames: ours.map((filter) => filter.filterName ?? ""),
    } as PlannedChange;
  });
  return { operation: "unlink", target, changes: [...changes, ...missingNames(selection, groups)] };
}

/**
 * Carries out a plan. Each log group is attempted even when another fails; failures are returned
 * with their message so that the caller can report them (and fail) instead of losing them.
 */
export async function applyPlan(
  logs: CloudWatchLogsClient,
  plan: RegistryPlan,
  options: Pick<RegistryOptions, "concurrency"> = {},
): Promise<RegistryOutcome> {
  const outcome: RegistryOutcome = { applied: [], failed: [] };
  const actionable = plan.changes.filter(
    (change) => change.action !== "skip" && (change.action !== "unchanged" || change.tagsToSet),
  );
  await forEachLimited(actionable, options.concurrency ?? DEFAULT_CONCURRENCY, async (change) => {
    try {
      await applyChange(logs, plan.target, change);
      outcome.applied.push(change);
    } catch (error) {
      const wrapped = new LogGroupRegistryError(
        `Could not ${change.action} log group ${change.logGroup}: ${(error as Error).message}`,
        { cause: error },
      );
      outcome.failed.push({ change, error: wrapped.message });
    }
  });
  return outcome;
}

/** One line per change, for dry runs and logs. */
export function describePlan(plan: RegistryPlan): string[] {
  return plan.changes.map((change) => {
    const tags = change.tagsToSet ? ` (set tags ${JSON.stringify(change.tagsToSet)})` : "";
    return `${change.action.padEnd(11)} ${change.logGroup}: ${change.reason}${tags}`;
  });
}

async function planLinkOne(
  logs: CloudWatchLogsClient,
  group: SelectedLogGroup,
  target: SubscriptionTarget,
  options: RegistryOptions,
): Promise<PlannedChange> {
  if (
    options.excludedLogGroups?.includes(group.name) ||
    group.name === defaultLogGroupOf(target.destinationArn)
  ) {
    return {
      logGroup: group.name,
      action: "skip",
      reason: "belongs to the shipper itself: subscribing it would ship the shipper's logs into a loop",
    };
  }
  const tagsToSet = options.tags ? await tagsMissing(logs, group, options.tags) : undefined;
  const withTags = (change: PlannedChange): PlannedChange =>
    tagsToSet ? { ...change, tagsToSet, logGroupArn: group.arn } : change;
  const filters = await readFilters(logs, group.name);
  const wantedPattern = target.filterPattern ?? "";
  const linked = filters.find(
    (filter) =>
      filter.destinationArn === target.destinationArn && (filter.filterPattern ?? "") === wantedPattern,
  );
  if (linked) {
    return withTags({
      logGroup: group.name,
      action: "unchanged",
      reason: `already subscribed by filter ${linked.filterName}`,
    });
  }
  const sameName = filters.find((filter) => filter.filterName === target.filterName);
  if (sameName) {
    return withTags({
      logGroup: group.name,
      action: "update",
      reason: `filter ${target.filterName} exists with destination ${sameName.destinationArn} and pattern ${JSON.stringify(sameName.filterPattern ?? "")}: point it at the shipper`,
    });
  }
  if (filters.length >= MAX_SUBSCRIPTION_FILTERS) {
    return {
      logGroup: group.name,
      action: "skip",
      reason: `already has ${filters.length} subscription filters (${filters.map((f) => f.filterName).join(", ")}), the most CloudWatch Logs allows: remove one first`,
    };
  }
  return withTags({
    logGroup: group.name,
    action: "subscribe",
    reason: `add subscription filter ${target.filterName}`,
  });
}

async function applyChange(logs: CloudWatchLogsClient, target: SubscriptionTarget, change: PlannedChange) {
  if (change.action === "subscribe" || change.action === "update") {
    await logs.send(
      new PutSubscriptionFilterCommand({
        logGroupName: change.logGroup,
        filterName: target.filterName,
        filterPattern: target.filterPattern ?? "",
        destinationArn: target.destinationArn,
      }),
    );
  }
  if (change.action === "unsubscribe") {
    for (const filterName of change.filterNames ?? []) {
      await logs.send(new DeleteSubscriptionFilterCommand({ logGroupName: change.logGroup, filterName }));
    }
  }
  if (change.tagsToSet && change.logGroupArn) {
    await logs.send(new TagResourceCommand({ resourceArn: change.logGroupArn, tags: change.tagsToSet }));
  }
}

function selectionMatchers(selection: LogGroupSelection): TagMatcher[] | undefined {
  const { tagSelector } = selection;
  const matchers = typeof tagSelector === "string" ? parseTagSelector(tagSelector) : tagSelector;
  const hasNames = (selection.names?.length ?? 0) > 0 || (selection.prefixes?.length ?? 0) > 0;
  if (!hasNames && (!matchers || matchers.length === 0)) {
    throw new InputError(
      "No log groups selected: give log group names, name prefixes or a tag selector (for example runtime=python)",
    );
  }
  if (selection.prefixes?.some((prefix) => prefix === "")) {
    throw new InputError('An empty log group prefix selects every log group: use "/" to mean all of them');
  }
  return matchers && matchers.length > 0 ? matchers : undefined;
}

function missingNames(selection: LogGroupSelection, found: SelectedLogGroup[]): PlannedChange[] {
  if (selection.tagSelector) return [];
  const foundNames = new Set(found.map((group) => group.name));
  return (selection.names ?? [])
    .filter((name) => !foundNames.has(name))
    .map((name) => ({ logGroup: name, action: "skip", reason: LOG_GROUP_NOT_FOUND }));
}

/** `/aws/lambda/<name>` of the destination function: its logs would loop back into it. */
function defaultLogGroupOf(destinationArn: string): string | undefined {
  const name = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)/.exec(destinationArn)?.[1];
  return name ? `/aws/lambda/${name}` : undefined;
}

function isOurs(filter: { filterName?: string; destinationArn?: string }, target: SubscriptionTarget) {
  return filter.destinationArn === target.destinationArn;
}

async function readFilters(logs: CloudWatchLogsClient, logGroupName: string) {
  const response = await logs.send(new DescribeSubscriptionFiltersCommand({ logGroupName }));
  return response.subscriptionFilters ?? [];
}

async function readTags(logs: CloudWatchLogsClient, resourceArn: string): Promise<Record<string, string>> {
  const response = await logs.send(new ListTagsForResourceCommand({ resourceArn }));
  return response.tags ?? {};
}

async function tagsMissing(
  logs: CloudWatchLogsClient,
  group: SelectedLogGroup,
  wanted: Record<string, string>,
): Promise<Record<string, string> | undefined> {
  const current = group.tags ?? (await readTags(logs, group.arn));
  const missing = Object.entries(wanted).filter(([key, value]) => current[key] !== value);
  return missing.length > 0 ? Object.fromEntries(missing) : undefined;
}

/** ListTagsForResource wants the log group ARN without the `:*` suffix that `arn` carries. */
function logGroupArnOf(group: LogGroup): string {
  if (group.logGroupArn) return group.logGroupArn;
  return (group.arn ?? "").replace(/:\*$/, "");
}

async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  await forEachLimited(
    items.map((item, index) => ({ item, index })),
    limit,
    async ({ item, index }) => {
      results[index] = await work(item);
    },
  );
  return results;
}

async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
