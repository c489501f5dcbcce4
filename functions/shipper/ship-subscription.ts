import { createHash } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { S3Client } from "@aws-sdk/client-s3";
import * as z from "zod/mini";
import type { AccountClients, SourceAccess, SourceAccounts } from "../core/accounts/source-accounts.ts";
import { parseEverySection } from "../core/config-sections.ts";
import {
  type DeliveryReport,
  deliverEvents,
  emptyDeliveryReport,
  type RetryOptions,
} from "../core/delivery/deliver.ts";
import type { GroupMetrics } from "../core/delivery/delivery-metrics.ts";
import { RuleSet } from "../core/delivery/rules.ts";
import { keepEventChunk } from "../core/delivery/spill.ts";
import { TenantLookupError } from "../core/errors.ts";
import { functionArn, functionLabelSources } from "../core/labels/function-labels.ts";
import { type CustomLogGroupCache, functionOfLogGroup } from "../core/labels/function-log-groups.ts";
import { type FunctionFactsCache, getFunctionFacts } from "../core/labels/function-lookup.ts";
import {
  configErrorFrom,
  emptyToUndefined,
  type LabelOptions,
  type LabelSources,
  parseLabelOptions,
  type ResolvedLabels,
  resolveGroupLabels,
} from "../core/labels/labels.ts";
import { containerTagCache, getLogGroupTags, type LogGroupTagCache } from "../core/labels/log-group-tags.ts";
import { chosenTenant } from "../core/labels/tenant-routing.ts";
import type { LokiPushClient } from "../core/loki/loki-client.ts";
import { durationText, type LokiTarget, parseLokiTarget } from "../core/loki/loki-target.ts";
import "../core/mini-schema.ts";
import { SHIPPER_METRIC } from "../core/metric-names.ts";
import { regionOfFilters } from "./filter-region.ts";
import { recordDelivery, recordPushAttempt } from "./observability.ts";
import {
  type DataMessage,
  decodeSubscriptionData,
  MalformedPayloadError,
  type SubscriptionMessage,
} from "./subscription.ts";

/** The live shipper's configuration, parsed once at cold start. */
export interface ShipperConfig {
  bucket: string;
  region: string;
  loki: LokiTarget;
  labels: LabelOptions;
  /** Drop and mask rules (LOG_RULES), compiled at cold start. */
  rules: RuleSet;
  /** Time kept back from the invocation's timeout for writing spill chunks to S3. */
  deadlineReserveMs: number;
  /** The role the shipper assumes to read a source account's tags; none: other accounts are not read. */
  sourceReaderRoleName?: string;
}

const shipperEnvSchema = z.object({
  BUCKET_NAME: z
    .string({ message: "required: the bucket for spill/, rejected/ and malformed/" })
    .check(z.minLength(3)),
  AWS_REGION: z.string({ message: "required (set by Lambda)" }).check(z.minLength(1)),
  SHIPPER_DEADLINE_RESERVE: z.pipe(
    z._default(z.string(), "5s"),
    durationText("expected a duration such as 5s"),
  ),
  // IAM's role name rule (CreateRole RoleName).
  SOURCE_READER_ROLE_NAME: z.optional(
    z.string().check(z.regex(/^[\w+=,.@-]{1,64}$/, "expected an IAM role name (a name, not an ARN)")),
  ),
});

/** All mistakes of all sections in one ConfigError, one line each. */
export function parseShipperConfig(env: Record<string, string | undefined>): ShipperConfig {
  const { own, loki, labels, rules } = parseEverySection({
    own: () => {
      const result = shipperEnvSchema.safeParse(emptyToUndefined(env, Object.keys(shipperEnvSchema.shape)));
      if (!result.success) throw configErrorFrom(result.error, env);
      return result.data;
    },
    loki: () => parseLokiTarget(env),
    labels: () => parseLabelOptions(env),
    rules: () => RuleSet.fromJson(env.LOG_RULES),
  });
  return {
    bucket: own.BUCKET_NAME,
    region: own.AWS_REGION,
    loki,
    labels,
    rules,
    deadlineReserveMs: own.SHIPPER_DEADLINE_RESERVE,
    ...(own.SOURCE_READER_ROLE_NAME ? { sourceReaderRoleName: own.SOURCE_READER_ROLE_NAME } : {}),
  };
}

export interface ShipperDeps {
  s3: S3Client;
  logs: CloudWatchLogsClient;
  /** For the tags and runtime of the function behind a log group (GetFunction, ListFunctions). */
  lambda: LambdaClient;
  /** The push client (created per invocation: credentials are cached in secrets.ts). */
  loki: () => Promise<LokiPushClient>;
  logger: Logger;
  metrics: Metrics;
  /** Per log group counts and freshness (published at the end of the invocation); none in local runs. */
  groupMetrics?: (logGroup: string) => GroupMetrics;
  tagCache?: LogGroupTagCache;
  functionCache?: FunctionFactsCache;
  /** Custom log groups (`LoggingConfig.LogGroup`) → their function, per account and region. */
  customLogGroupCache?: CustomLogGroupCache;
  /**
   * The clients of a payload's account and region (a central stream carries many); absent: `logs`
   * and `lambda` read every payload, as for direct subscriptions in one account and region.
   */
  sourceAccounts?: Pick<SourceAccounts, "access">;
  now?: () => number;
  retry?: Partial<RetryOptions>;
}

export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

export type ShipResult =
  | { outcome: "control" }
  | { outcome: "malformed"; key: string; stage: string; error: string }
  | {
      outcome: "delivered";
      logGroup: string;
      report: DeliveryReport;
      labels: Record<string, string>;
      /** The group's own tenant (its tenant tag); absent: the default tenant. */
      tenant?: string;
    };

/**
 * Handles one subscription invocation. Resolves when every event is in Loki or in S3; rejects
 * only when S3 failed too (then Lambda's retry is the last resort). A malformed payload is kept
 * in `malformed/` and resolves, so that it cannot make the function retry forever.
 */
export async function shipSubscriptionEvent(
  event: unknown,
  context: InvocationContext,
  config: ShipperConfig,
  deps: ShipperDeps,
): Promise<ShipResult> {
  const data = (event as { awslogs?: { data?: unknown } } | null)?.awslogs?.data;
  let message: SubscriptionMessage;
  try {
    message = decodeSubscriptionData(data);
  } catch (error) {
    if (!(error instanceof MalformedPayloadError)) throw error;
    return keepMalformed(
      typeof data === "string" ? data : JSON.stringify(event ?? null),
      error,
      config,
      deps,
    );
  }
  return shipMessage(message, context, config, deps);
}

/**
 * Ships one decoded payload (a direct subscription's, or a Kinesis record's): labels from its
 * account and region, then Loki, or S3 for what Loki does not take. Rejects as
 * shipSubscriptionEvent does.
 */
export async function shipMessage(
  message: SubscriptionMessage,
  context: InvocationContext,
  config: ShipperConfig,
  deps: ShipperDeps,
): Promise<ShipResult> {
  const now = deps.now ?? Date.now;
  if (message.messageType === "CONTROL_MESSAGE") {
    deps.logger.info("ignoring CONTROL_MESSAGE (sent when a subscription filter is created)");
    return { outcome: "control" };
  }

  const resolved = await resolveBatchLabels(message, config, deps);

  const groupMetrics = deps.groupMetrics?.(message.logGroup);
  const report = await deliverBatch(message, resolved, context, config, deps, now, groupMetrics);
  recordDelivery(deps.metrics, report);
  groupMetrics?.delivered(report);
  groupMetrics?.publish();
  const tenant = chosenTenant(resolved.tenant);
  const summary = { logGroup: message.logGroup, ...(tenant ? { tenant } : {}), ...report };
  if (report.spilled > 0 || Object.keys(report.refused).length > 0)
    deps.logger.warn("delivery incomplete", summary);
  else deps.logger.info("delivered", summary);
  return {
    outcome: "delivered",
    logGroup: message.logGroup,
    report,
    labels: resolved.labels,
    ...(tenant ? { tenant } : {}),
  };
}

/** Pushes the batch to Loki, keeping in S3 what Loki does not take (all of it without a Loki client). */
async function deliverBatch(
  message: DataMessage,
  resolved: ResolvedLabels,
  context: InvocationContext,
  config: ShipperConfig,
  deps: ShipperDeps,
  now: () => number,
  groupMetrics: GroupMetrics | undefined,
): Promise<DeliveryReport> {
  const tenant = chosenTenant(resolved.tenant);
  let loki: LokiPushClient;
  try {
    loki = await deps.loki();
  } catch (error) {
    return keepWithoutClient(message, { labels: resolved.labels, tenant }, error, config, deps, now);
  }
  const deadline = now() + context.getRemainingTimeInMillis() - config.deadlineReserveMs;
  const batch = {
    logGroup: message.logGroup,
    labels: resolved.labels,
    ...(tenant ? { tenant } : {}),
    events: message.events,
    eventLabels: resolved.eventLabels,
    rules: config.rules,
  };
  return deliverEvents([batch], {
    loki,
    tenants: config.labels.tenants,
    s3: deps.s3,
    bucket: config.bucket,
    deadline,
    logger: deps.logger,
    now,
    ...(deps.retry ? { retry: deps.retry } : {}),
    onPushAttempt: (attempt) => recordPushAttempt(deps.metrics, attempt),
    ...(groupMetrics ? { onAccepted: (push) => groupMetrics.accepted(push) } : {}),
  });
}

/**
 * Keeps the batch in spill/ when no Loki client can be made. E.g. the credentials cannot be read:
 * keep the events for a replay rather than fail the invocation, which Lambda retries twice and
 * then drops. Shaped first: nothing to be masked or dropped may reach S3.
 */
async function keepWithoutClient(
  message: DataMessage,
  resolved: { labels: Record<string, string>; tenant: string | undefined },
  error: unknown,
  config: ShipperConfig,
  deps: ShipperDeps,
  now: () => number,
): Promise<DeliveryReport> {
  const { tenant } = resolved;
  const reason = `no Loki client: ${(error as Error).message}`;
  const shaped = config.rules.shape(message.logGroup, message.events);
  const key = await keepEventChunk(
    deps.s3,
    config.bucket,
    {
      kind: "spill",
      logGroup: message.logGroup,
      labels: resolved.labels,
      ...(tenant ? { tenant } : {}),
      reason,
      records: shaped.events,
    },
    now,
  );
  deps.logger.error("could not create the Loki client; events kept in S3", {
    logGroup: message.logGroup,
    key,
    reason,
  });
  return {
    ...emptyDeliveryReport(),
    received: message.events.length,
    dropped: shaped.dropped,
    spilled: shaped.events.length,
    chunkKeys: [key],
  };
}

/**
 * The labels of a batch's log group, read in the payload's account and region (the region from the
 * filter name, see filter-region.ts): its tags and, for the log group of a Lambda function
 * (`/aws/lambda/<name>`, or the one its `LoggingConfig.LogGroup` names), its function's tags and
 * runtime. A failed look-up ships with the labels it could get, rather than not ship: the events
 * stay findable by log group (and the metric TagLookupFailures says so). An account without a
 * reader role ships with the labels known without reading it (account, region, log group). With
 * tenant routing on, both throw TenantLookupError instead: the tenant is unknown, and guessing
 * could leak into another.
 */
async function resolveBatchLabels(
  message: DataMessage,
  config: ShipperConfig,
  deps: ShipperDeps,
): Promise<ResolvedLabels> {
  const { logGroup } = message;
  const context = {
    accountId: message.owner,
    region: regionOfFilters(message.subscriptionFilters, config.region),
  };
  const lookupFailed = (what: string, error: unknown) => {
    deps.metrics.addMetric(SHIPPER_METRIC.tagLookupFailures, MetricUnit.Count, 1);
    const { tagKey } = config.labels.tenants;
    if (tagKey) {
      throw new TenantLookupError(
        `could not read the ${what}, which may hold the tenant tag ${tagKey}: the events of ${logGroup} are not sent to a tenant that may be the wrong one; Lambda retries the invocation, then keeps it in the on-failure queue (${(error as Error).message})`,
        { cause: error },
      );
    }
    deps.logger.warn(`could not read the ${what}; shipping without its labels`, {
      logGroup,
      error: (error as Error).name,
      message: (error as Error).message,
    });
  };
  const sources: LabelSources = { groupTags: {} };
  let access: SourceAccess | undefined;
  try {
    access = await accessOf(context, deps);
  } catch (error) {
    lookupFailed(`reader role of account ${context.accountId}`, error);
  }
  if (access?.kind === "readable")
    await readLabelSources(logGroup, context, access.clients, sources, config, deps, lookupFailed);
  else if (access && config.labels.tenants.tagKey) {
    throw new TenantLookupError(
      `account ${context.accountId} has no reader role to read the tenant tag ${config.labels.tenants.tagKey} of ${logGroup} (${access.reason}): its events are not sent to a tenant that may be the wrong one; Lambda retries the record, then its on-failure destination says which one it was: create the role (SOURCE_READER_ROLE_NAME) in that account`,
    );
  }
  const resolved = resolveGroupLabels(logGroup, sources, config.labels, context);
  reportLabelProblems(logGroup, resolved, deps);
  return resolved;
}

/**
 * How to read the payload's account and region; without `sourceAccounts`, with the shipper's own
 * clients. An account without a reader role is reported once by SourceAccounts, not per batch.
 */
function accessOf(context: { accountId: string; region: string }, deps: ShipperDeps): Promise<SourceAccess> {
  if (!deps.sourceAccounts)
    return Promise.resolve({ kind: "readable", clients: { logs: deps.logs, lambda: deps.lambda } });
  return deps.sourceAccounts.access(context.accountId, context.region);
}

/** The group's tags and its function's facts into `sources`; a failed look-up goes to `lookupFailed`. */
async function readLabelSources(
  logGroup: string,
  context: { accountId: string; region: string },
  clients: AccountClients,
  sources: LabelSources,
  config: ShipperConfig,
  deps: ShipperDeps,
  lookupFailed: (what: string, error: unknown) => void,
): Promise<void> {
  try {
    const lookup = await getLogGroupTags(clients.logs, logGroup, context, deps.tagCache ?? containerTagCache);
    sources.groupTags = lookup.tags;
    if (!lookup.found)
      deps.logger.warn("log group not found when reading its tags", { logGroup, ...context });
  } catch (error) {
    lookupFailed("log group's tags", error);
  }
  if (!config.labels.functionLabels) return;
  const backoff = {
    onThrottle: (call: string, attempt: number, waitMs: number) =>
      deps.logger.warn("function look-up throttled, backing off", { call, attempt, waitMs }),
  };
  let functionName: string | undefined;
  try {
    const listingKey = `${context.accountId}/${context.region}`;
    functionName = await functionOfLogGroup(
      clients.lambda,
      logGroup,
      deps.customLogGroupCache,
      backoff,
      listingKey,
    );
    if (functionName) {
      // By ARN (GetFunction takes one): two accounts' functions of one name never share a cache entry.
      const arn = functionArn(functionName, context);
      const facts = await getFunctionFacts(clients.lambda, arn, deps.functionCache, backoff);
      Object.assign(sources, functionLabelSources(facts));
    }
  } catch (error) {
    lookupFailed(`tags and runtime of the function ${functionName ?? `logging to ${logGroup}`}`, error);
  }
}

function reportLabelProblems(logGroup: string, resolved: ResolvedLabels, deps: ShipperDeps): void {
  const overLimit = resolved.dropped.filter((drop) => drop.reason.startsWith("over Loki's limit"));
  if (overLimit.length > 0)
    deps.logger.warn("tags dropped over Loki's label limit", { logGroup, dropped: overLimit });
  if (resolved.tenant.kind === "refused")
    deps.logger.error("the log group's tenant is not allowed; its events go to rejected/", {
      logGroup,
      tenant: resolved.tenant.tenant,
      from: resolved.tenant.source,
      reason: resolved.tenant.reason,
    });
}

/** Keeps an undecodable payload (`raw`: its data, or the whole event) in `malformed/`, with why. */
export async function keepMalformed(
  raw: string,
  error: MalformedPayloadError,
  config: ShipperConfig,
  deps: ShipperDeps,
): Promise<ShipResult> {
  const now = deps.now ?? Date.now;
  const id = `malformed-${createHash("sha256").update(raw).digest("hex").slice(0, 24)}`;
  const reason = `${error.stage}: ${error.message}`;
  const key = await keepEventChunk(
    deps.s3,
    config.bucket,
    {
      kind: "malformed",
      logGroup: "unknown",
      labels: {},
      reason,
      records: [{ id, timestamp: now(), message: raw, logStream: "", reason }],
    },
    now,
  );
  deps.metrics.addMetric(SHIPPER_METRIC.malformedPayloads, MetricUnit.Count, 1);
  deps.logger.error("malformed subscription payload kept in S3", {
    stage: error.stage,
    error: error.message,
    key,
  });
  return { outcome: "malformed", key, stage: error.stage, error: error.message };
}
