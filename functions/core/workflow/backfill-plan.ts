import {
  type CloudWatchLogsClient,
  type LogGroup,
  paginateDescribeLogGroups,
} from "@aws-sdk/client-cloudwatch-logs";
import { RateBudget } from "../cloudwatch/rate-budget.ts";
import { matchesTagSelector, parseTagSelector } from "../cloudwatch/tag-selector.ts";
import type { StreamBudgetSettings } from "../delivery/stream-budget.ts";
import { InputError } from "../errors.ts";
import { type FunctionFacts, functionLabelSources } from "../labels/function-labels.ts";
import { CustomLogGroupCache, functionOfLogGroup } from "../labels/function-log-groups.ts";
import {
  FunctionFactsCache,
  type FunctionLookupClients,
  getFunctionFactsInBulk,
} from "../labels/function-lookup.ts";
import { type LabelOptions, type LabelSources, resolveGroupLabels } from "../labels/labels.ts";
import { getLogGroupTags, LogGroupTagCache, logGroupArn } from "../labels/log-group-tags.ts";
import { chosenTenant } from "../labels/tenant-routing.ts";
import { groupKeySegment } from "../storage/chunk-format.ts";
import { getJson, putJson, runKeys, type Store } from "../storage/run-store.ts";
import type { BackfillRequest, LogGroupSelector } from "./backfill-request.ts";
import { describeEstimate, estimatePlan, type PlanEstimate } from "./plan-estimate.ts";
import { type AccountAccess, NoReaderRoleError, regionOf, type SourceClients } from "./source-access.ts";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Child executions one parent starts; each holds `slicesPerPart` slices. */
const MAX_PARTS = 1000;
/**
 * Pace of the plan's Lambda and Tagging API calls: Lambda allows 15 control-plane requests a second
 * per account (ListFunctions) and GetFunction more; the Tagging API does not publish its rate.
 */
const FUNCTION_LOOKUPS_PER_SECOND = 5;

export interface PlannedGroup {
  logGroup: string;
  /** The account and region the group is in (its events' `account` and `region` labels). */
  account: string;
  region: string;
  arn: string;
  /** The log group's own tags. */
  tags: Record<string, string>;
  /** The Lambda function behind `/aws/lambda/<name>`: its tags and runtime, as looked up. */
  function?: FunctionFacts;
  labels: Record<string, string>;
  /**
   * The tenant the group's tenant tag names (absent: the default tenant). Its chunks carry it, and
   * their replay checks it against the allow list: a tenant not in it gets the events in rejected/.
   */
  tenant?: string;
  /** Why `tenant` is not allowed (LOKI_TENANTS_ALLOWED): the group is exported only when asked. */
  tenantRefused?: string;
  droppedTags: { key: string; reason: string }[];
  retentionInDays?: number;
}

/**
 * One unit of export work: one log group over one slice of time, aligned to whole UTC hours. It
 * travels through the state machine, so it holds no labels (those are in
 * `runs/<runId>/groups/<group>.json`): a part of many slices stays far below the 256 KiB payload limit.
 */
export interface SliceTask {
  logGroup: string;
  /** The group's account and region (absent in runs planned by earlier versions: the functions' own). */
  account?: string;
  region?: string;
  /** UTC start hour of the slice window, e.g. 20261122T14: unique per group within a run. */
  sliceId: string;
  startMs: number;
  /** Exclusive. */
  endMs: number;
}

/** Settings every slice of a run shares (the state machine passes them to each branch). */
export interface RunOptions {
  filterPattern?: string;
  logStreamNames?: string[];
  logStreamNamePrefix?: string;
  requestsPerSecond: number;
  concurrency: number;
  maxEventsPerChunk: number;
  maxPagesPerInvocation: number;
  loki: Record<string, string>;
  /** `LABEL_*` overrides: the replay applies the same per-entry choices (log stream label, metadata). */
  labels: Record<string, string>;
  /** Replay pace for the whole run, shared by the concurrent slices, and per stream. */
  bytesPerSecond?: number;
  perStreamBytesPerSecond?: number;
}

export interface BackfillPlan {
  runId: string;
  createdAt: string;
  request: BackfillRequest;
  groups: PlannedGroup[];
  sliceCount: number;
  partCount: number;
  options: RunOptions;
  estimate?: PlanEstimate;
}

export interface PlanPart {
  runId: string;
  partIndex: number;
  options: RunOptions;
  slices: SliceTask[];
}

/** What the plan step hands to the state machine: keys and counts, slices inline only for one part. */
export interface PlanOutput {
  run: {
    runId: string;
    planKey: string;
    dryRun: boolean;
    isChild: boolean;
    sliceCount: number;
    partCount: number;
    parts: { runId: string; partIndex: number }[];
    /** A dry run's estimate: hour streams, and the time the stream budget and the pace imply. */
    estimate?: string;
    /** The groups whose tenant is not allowed, and whether they are exported (refusedTenantsNote). */
    refusedTenants?: string;
  };
  part: { options: RunOptions; slices: SliceTask[] };
}

export interface PlanDeps {
  logs: CloudWatchLogsClient;
  /** For the tags and runtime of the functions behind Lambda log groups. */
  functions: FunctionLookupClients;
  /** The clients of the accounts and regions a request names (their reader roles). */
  accounts: AccountAccess;
  store: Store;
  /** The label options: the function's `LABEL_*` settings with the request's `labels` over them. */
  labels: LabelOptions;
  /** The stream budget: the function's `LOKI_*` settings with the request's `loki` over them. */
  streamBudget: StreamBudgetSettings;
  now?: () => number;
}

/**
 * Splits `[startMs, endMs)` at multiples of `sliceHours` UTC hours, so that a slice never spans two
 * time shards' worth of boundaries: its entries land in the same `time_shard` streams however the
 * slices are ordered or retried.
 */
export function splitIntoSlices(
  startMs: number,
  endMs: number,
  sliceHours: number,
): { sliceId: string; startMs: number; endMs: number }[] {
  const length = sliceHours * HOUR_MS;
  const slices: { sliceId: string; startMs: number; endMs: number }[] = [];
  for (let boundary = Math.floor(startMs / length) * length; boundary < endMs; boundary += length) {
    slices.push({
      sliceId: sliceIdOf(boundary),
      startMs: Math.max(startMs, boundary),
      endMs: Math.min(endMs, boundary + length),
    });
  }
  return slices;
}

function sliceIdOf(boundaryMs: number): string {
  // 2026-11-22T14:00:00.000Z -> 20261122T14
  return new Date(boundaryMs).toISOString().slice(0, 13).replace(/-/g, "");
}

/**
 * Resolves the log groups a request names (names, ARNs, prefix or tag selector), each in its
 * account and region, checks that each exists and still holds the range (retention), and resolves
 * its labels as the live shipper does: from its tags and, for `/aws/lambda/<name>`, its function's
 * tags and runtime, read in the group's own account. A tag selector matches the group's tags over
 * its function's (the same precedence as the labels).
 */
export async function resolveLogGroups(
  request: BackfillRequest,
  deps: Pick<PlanDeps, "logs" | "functions" | "accounts" | "labels" | "now">,
): Promise<PlannedGroup[]> {
  const problems: string[] = [];
  const selected: GroupWithSources[] = [];
  for (const lookup of lookupsOf(request.selector)) {
    const reader = await readerOf(lookup.source, deps, problems);
    if (reader) selected.push(...(await selectInSource(lookup, reader, deps, problems)));
  }
  problems.push(...retentionProblems(selected, request.startMs, (deps.now ?? Date.now)()));
  if (problems.length > 0) throw new InputError(`Cannot plan the backfill: ${problems.join("; ")}`);

  return selected
    .map((withSources) => plannedGroup(withSources, deps.labels))
    .sort((a, b) => a.logGroup.localeCompare(b.logGroup) || a.account.localeCompare(b.account));
}

/** What one account and region is asked for; `source` absent: the functions' own. */
interface SourceLookup {
  source?: { account?: string; region?: string };
  selector: Pick<LogGroupSelector, "names" | "prefix" | "tagSelector">;
}

/** One look-up for the names, prefix or tag selector, and one per account and region of the ARNs. */
function lookupsOf(selector: LogGroupSelector): SourceLookup[] {
  const { names, prefix, tagSelector, account, region, arns = [] } = selector;
  const lookups: SourceLookup[] = [];
  if (names || prefix || tagSelector !== undefined) {
    lookups.push({
      ...(account || region
        ? { source: { ...(account ? { account } : {}), ...(region ? { region } : {}) } }
        : {}),
      selector: {
        ...(names ? { names } : {}),
        ...(prefix ? { prefix } : {}),
        ...(tagSelector !== undefined ? { tagSelector } : {}),
      },
    });
  }
  const bySource = new Map<string, SourceLookup & { selector: { names: string[] } }>();
  for (const { logGroup, account, region } of arns) {
    const key = `${account}:${region}`;
    const lookup = bySource.get(key) ?? { source: { account, region }, selector: { names: [] } };
    lookup.selector.names.push(logGroup);
    bySource.set(key, lookup);
  }
  return [...lookups, ...bySource.values()];
}

/** The clients and region of a look-up; an account without a reader role goes to `problems`. */
async function readerOf(
  source: SourceLookup["source"],
  deps: Pick<PlanDeps, "logs" | "functions" | "accounts">,
  problems: string[],
): Promise<(SourceClients & { region: string }) | undefined> {
  if (!source) return { logs: deps.logs, functions: deps.functions, region: await regionOf(deps.logs) };
  const home = await deps.accounts.home();
  const wanted = { account: source.account ?? home.account, region: source.region ?? home.region };
  try {
    return { ...(await deps.accounts.clients(wanted)), region: wanted.region };
  } catch (error) {
    if (!(error instanceof NoReaderRoleError)) throw error;
    problems.push(error.message);
    return undefined;
  }
}

/** The groups of one account and region that a look-up chooses, with their label sources. */
async function selectInSource(
  { source, selector }: SourceLookup,
  reader: SourceClients & { region: string },
  deps: Pick<PlanDeps, "labels">,
  problems: string[],
): Promise<GroupWithSources[]> {
  const where = source?.account ? `account ${source.account}, ${reader.region}` : reader.region;
  const chosen = await findLogGroups(selector, reader.logs, where, problems);
  const withSources = await lookUpLabelSources(chosen, reader.region, deps.labels.functionLabels, reader);
  if (selector.tagSelector === undefined) return withSources;
  const matchers = parseTagSelector(selector.tagSelector);
  const selected = withSources.filter(({ sources }) =>
    matchesTagSelector({ ...sources.functionTags, ...sources.groupTags }, matchers),
  );
  if (selected.length === 0 && problems.length === 0) {
    problems.push(
      `no log group${selector.prefix ? ` starting with ${JSON.stringify(selector.prefix)}` : ""} in ${where} has tags matching ${JSON.stringify(selector.tagSelector)}: check the tags with the CLI's labels command`,
    );
  }
  return selected;
}

/** A chosen group with its labels, tenant and the account and region its events carry. */
function plannedGroup(
  { group, arn, region, sources, functionFacts }: GroupWithSources,
  labelOptions: LabelOptions,
): PlannedGroup {
  const name = group.logGroupName as string;
  const account = accountOf(group.arn);
  const resolved = resolveGroupLabels(name, sources, labelOptions, { accountId: account, region });
  const tenant = chosenTenant(resolved.tenant);
  return {
    logGroup: name,
    account,
    region,
    arn,
    tags: sources.groupTags,
    ...(functionFacts ? { function: functionFacts } : {}),
    labels: resolved.labels,
    ...(tenant ? { tenant } : {}),
    ...(resolved.tenant.kind === "refused" ? { tenantRefused: resolved.tenant.reason } : {}),
    droppedTags: resolved.dropped,
    ...(group.retentionInDays !== undefined ? { retentionInDays: group.retentionInDays } : {}),
  };
}

/** The log groups a selector names or whose name starts with its prefix; what is missing goes to `problems`. */
async function findLogGroups(
  selector: SourceLookup["selector"],
  logs: CloudWatchLogsClient,
  where: string,
  problems: string[],
): Promise<LogGroup[]> {
  const found = new Map<string, LogGroup>();
  const describe = async (prefix?: string) => {
    const pages = paginateDescribeLogGroups({ client: logs }, prefix ? { logGroupNamePrefix: prefix } : {});
    for await (const page of pages)
      for (const group of page.logGroups ?? []) if (group.logGroupName) found.set(group.logGroupName, group);
  };
  if (selector.names) {
    for (const name of selector.names) await describe(name);
    const missing = selector.names.filter((name) => !found.has(name));
    if (missing.length > 0) {
      problems.push(
        `unknown log group(s) ${missing.map((name) => JSON.stringify(name)).join(", ")}: check the name and the region (${where})`,
      );
    }
    return selector.names.flatMap((name) => found.get(name) ?? []);
  }
  await describe(selector.prefix);
  if (found.size === 0 && selector.prefix)
    problems.push(`no log group starts with ${JSON.stringify(selector.prefix)} in ${where}`);
  return [...found.values()];
}

interface GroupWithSources {
  group: LogGroup;
  arn: string;
  region: string;
  sources: LabelSources;
  functionFacts?: FunctionFacts;
}

/**
 * Each group's tags, and the tags and runtime of the functions behind the Lambda groups, looked
 * up together in the cheaper call pattern (function-lookup.ts) and paced to a few calls a second.
 */
async function lookUpLabelSources(
  groups: LogGroup[],
  region: string,
  functionLabels: boolean,
  deps: Pick<PlanDeps, "logs" | "functions">,
): Promise<GroupWithSources[]> {
  const tagCache = new LogGroupTagCache();
  const backoff = { budget: new RateBudget(FUNCTION_LOOKUPS_PER_SECOND) };
  const functionNames = new Map<LogGroup, string>();
  // Groups outside /aws/lambda/ share one ListFunctions listing (function-log-groups.ts).
  const customLogGroups = new CustomLogGroupCache();
  if (functionLabels)
    for (const group of groups) {
      const logGroup = group.logGroupName ?? "";
      const name = await functionOfLogGroup(deps.functions.lambda, logGroup, customLogGroups, backoff);
      if (name) functionNames.set(group, name);
    }
  const facts = await getFunctionFactsInBulk(
    deps.functions,
    [...functionNames.values()],
    new FunctionFactsCache(),
    backoff,
  );
  const withSources: GroupWithSources[] = [];
  for (const group of groups) {
    const context = { accountId: accountOf(group.arn), region };
    const arn = logGroupArn(group.arn ?? group.logGroupName ?? "", context);
    const { tags } = await getLogGroupTags(deps.logs, arn, context, tagCache);
    const functionName = functionNames.get(group);
    const functionFacts = functionName ? facts.get(functionName) : undefined;
    const fromFunction = functionFacts ? functionLabelSources(functionFacts) : {};
    withSources.push({
      group,
      arn,
      region,
      sources: { groupTags: tags, ...fromFunction },
      ...(functionFacts ? { functionFacts } : {}),
    });
  }
  return withSources;
}

function retentionProblems(selected: GroupWithSources[], startMs: number, now: number): string[] {
  const problems: string[] = [];
  for (const { group } of selected) {
    if (group.retentionInDays === undefined) continue;
    const keptSince = now - group.retentionInDays * DAY_MS;
    if (startMs < keptSince) {
      problems.push(
        `${group.logGroupName} keeps events for ${group.retentionInDays} days, so nothing before ${new Date(keptSince).toISOString()} exists: start the range at or after that`,
      );
    }
  }
  return problems;
}

/**
 * Plans a run and writes it to S3: `runs/<runId>/plan.json` (what the report needs) and one
 * `runs/<runId>/parts/<n>.json` per child execution (the slices it exports).
 */
export async function planBackfill(
  request: BackfillRequest,
  runId: string,
  deps: PlanDeps,
): Promise<PlanOutput> {
  const groups = await resolveLogGroups(request, deps);
  const windows = splitIntoSlices(request.startMs, request.endMs, request.sliceHours);
  // Every event of a group whose tenant is not allowed would end in rejected/: left out unless asked.
  const exported = groups.filter((group) => !group.tenantRefused || request.includeRefusedTenants);
  const slices: SliceTask[] = exported.flatMap((group) =>
    windows.map((window) => ({
      logGroup: group.logGroup,
      account: group.account,
      region: group.region,
      ...window,
    })),
  );
  const refusedTenants = refusedTenantsNote(groups, request.includeRefusedTenants === true);
  const partCount = Math.max(1, Math.ceil(slices.length / request.slicesPerPart));
  if (partCount > MAX_PARTS) {
    throw new InputError(
      `The backfill has ${slices.length} slices, more than ${MAX_PARTS * request.slicesPerPart} one run can hold: raise sliceHours, shorten the range or split the log groups into several runs`,
    );
  }
  const options = runOptionsOf(request);
  const streamSettings = deps.streamBudget;
  const estimate = estimatePlan(slices, streamSettings, request.requestsPerSecond);
  const plan: BackfillPlan = {
    runId,
    createdAt: new Date((deps.now ?? Date.now)()).toISOString(),
    request,
    groups,
    sliceCount: slices.length,
    partCount,
    options,
    estimate,
  };
  const parts = splitIntoParts(runId, slices, partCount, request.slicesPerPart, options);
  // A resumed run (same runId) keeps its first plan: its checkpoints refer to those slices. A dry
  // run's plan is only a preview: running it for real plans again.
  const earlier = await getJson<BackfillPlan>(deps.store, runKeys.plan(runId));
  if (earlier && !earlier.request.dryRun) return loadPlanOutput(deps.store, runId, 0, false, request.dryRun);
  await putJson(deps.store, runKeys.plan(runId), plan);
  for (const group of groups) await putJson(deps.store, runKeys.group(runId, groupKeySegment(group)), group);
  if (!request.dryRun)
    for (const part of parts) await putJson(deps.store, runKeys.part(runId, part.partIndex), part);
  return {
    run: {
      runId,
      planKey: runKeys.plan(runId),
      dryRun: request.dryRun,
      isChild: false,
      sliceCount: slices.length,
      partCount,
      parts: parts.map((part) => ({ runId, partIndex: part.partIndex })),
      ...(request.dryRun ? { estimate: describeEstimate(estimate, streamSettings) } : {}),
      ...(refusedTenants ? { refusedTenants } : {}),
    },
    part: partCount === 1 && !request.dryRun ? { options, slices } : { options, slices: [] },
  };
}

/**
 * Names the planned groups whose tenant tag names a tenant outside LOKI_TENANTS_ALLOWED, and what
 * the plan does with them (for the plan output and the run's report); undefined when there are none.
 */
export function refusedTenantsNote(groups: PlannedGroup[], included: boolean): string | undefined {
  const refused = groups.filter((group) => group.tenantRefused);
  if (refused.length === 0) return undefined;
  const named = refused
    .map(
      (group) =>
        `${group.logGroup} (tenant ${JSON.stringify(group.tenant)})${group.account ? ` in ${group.account} ${group.region}` : ""}`,
    )
    .join(", ");
  const what = included
    ? "exported into rejected/ as asked (includeRefusedTenants), where every one of their events is kept with the reason"
    : "not exported: pass --include-refused-tenants (includeRefusedTenants: true) to keep their events in rejected/";
  return `${refused.length} log group(s) name a tenant outside LOKI_TENANTS_ALLOWED by their tenant tag: ${named}; ${what}. Add the tenant to LOKI_TENANTS_ALLOWED or fix the tag to send them to Loki`;
}

/** What every slice's export and replay needs of the request. */
function runOptionsOf(request: BackfillRequest): RunOptions {
  return {
    ...(request.filterPattern ? { filterPattern: request.filterPattern } : {}),
    ...(request.logStreamNames ? { logStreamNames: request.logStreamNames } : {}),
    ...(request.logStreamNamePrefix ? { logStreamNamePrefix: request.logStreamNamePrefix } : {}),
    requestsPerSecond: request.requestsPerSecond,
    concurrency: request.concurrency,
    maxEventsPerChunk: request.maxEventsPerChunk,
    maxPagesPerInvocation: request.maxPagesPerInvocation,
    loki: request.loki,
    labels: request.labels,
    // Each slice's replay paces itself to its share of the run's rate.
    ...(request.bytesPerSecond ? { bytesPerSecond: request.bytesPerSecond / request.concurrency } : {}),
    ...(request.perStreamBytesPerSecond ? { perStreamBytesPerSecond: request.perStreamBytesPerSecond } : {}),
  };
}

/** The slices in `partCount` parts of `slicesPerPart` each, in plan order. */
function splitIntoParts(
  runId: string,
  slices: SliceTask[],
  partCount: number,
  slicesPerPart: number,
  options: RunOptions,
): PlanPart[] {
  const parts: PlanPart[] = [];
  for (let partIndex = 0; partIndex < partCount; partIndex++) {
    const partSlices = slices.slice(partIndex * slicesPerPart, (partIndex + 1) * slicesPerPart);
    parts.push({ runId, partIndex, options, slices: partSlices });
  }
  return parts;
}

/** The plan output for one part of an existing plan: what a child execution (or a resumed run) works on. */
export async function loadPlanOutput(
  store: Store,
  runId: string,
  partIndex: number,
  isChild: boolean,
  dryRun = false,
): Promise<PlanOutput> {
  const plan = await getJson<BackfillPlan>(store, runKeys.plan(runId));
  if (!plan) throw new InputError(`Run ${runId} has no plan at s3://${store.bucket}/${runKeys.plan(runId)}`);
  const part = dryRun ? undefined : await getJson<PlanPart>(store, runKeys.part(runId, partIndex));
  if (!part && !dryRun) throw new InputError(`Run ${runId} has no part ${partIndex}`);
  const loadAll = !isChild && plan.partCount > 1;
  return {
    run: {
      runId,
      planKey: runKeys.plan(runId),
      dryRun,
      isChild,
      sliceCount: plan.sliceCount,
      partCount: isChild ? 1 : plan.partCount,
      parts: Array.from({ length: plan.partCount }, (_, index) => ({ runId, partIndex: index })),
    },
    part: { options: plan.options, slices: loadAll || !part ? [] : part.slices },
  };
}

function accountOf(arn: string | undefined): string {
  // arn:aws:logs:<region>:<account>:log-group:<name>:*
  return arn?.split(":")[4] ?? "";
}
