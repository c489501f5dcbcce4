import { Logger } from "@aws-lambda-powertools/logger";
import { CloudWatchLogsClient, ListTagsForResourceCommand } from "@aws-sdk/client-cloudwatch-logs";
import type { CloudFormationCustomResourceEvent, EventBridgeEvent } from "aws-lambda";
import * as z from "zod/mini";
import {
  applyPlan,
  describePlan,
  LogGroupRegistryError,
  type LogGroupSelection,
  planLink,
  planUnlink,
  type RegistryPlan,
  type SubscriptionTarget,
  selectionIncludes,
} from "./core/cloudwatch/log-group-registry.ts";
import { ConfigError, InputError } from "./core/errors.ts";
import { addIssue } from "./core/mini-schema.ts";

/**
 * Subscribes log groups to the shipper. Two triggers:
 * - a CloudFormation custom resource (through the CDK Provider framework) at deploy time, with
 *   the selections in its properties: Create/Update link them, Delete unlinks them;
 * - an EventBridge rule on the CloudTrail events CreateLogGroup / TagResource / TagLogGroup, for
 *   log groups created (or tagged) later, checked against the selections in the environment.
 * The shipper's own log groups (EXCLUDED_LOG_GROUPS) are never subscribed.
 */

// zod/mini (see core/mini-schema.ts): the same checks and messages as full zod, a shorter cold start.
const nonEmpty = () => z.string().check(z.minLength(1));
const selectionSchema = z.strictObject({
  names: z.optional(z.array(nonEmpty())),
  prefixes: z.optional(z.array(nonEmpty())),
  tagSelector: z.optional(nonEmpty()),
});

/** Text holding a JSON array ("[]" when absent), parsed, then each item checked by `item`. */
function jsonArray<Item extends z.core.SomeType>(item: Item, what: string) {
  const parsed = z.pipe(
    z._default(z.string(), "[]"),
    z.transform((text: string, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        addIssue(ctx, `expected a JSON array of ${what}, got ${text}`);
        return z.NEVER;
      }
    }),
  );
  return z.pipe(parsed, z.array(item));
}
const selectionsJson = jsonArray(selectionSchema, "selections");
const namesJson = jsonArray(z.string(), "log group names");

const configSchema = z.object({
  DESTINATION_ARN: z.string().check(z.startsWith("arn:", "expected the shipper Lambda ARN")),
  FILTER_NAME: z._default(nonEmpty(), "loki-shipper"),
  FILTER_PATTERN: z._default(z.string(), ""),
  REGISTRATION_SELECTIONS: selectionsJson,
  EXCLUDED_LOG_GROUPS: namesJson,
});

export interface RegistrarConfig {
  target: SubscriptionTarget;
  selections: LogGroupSelection[];
  excludedLogGroups: string[];
}

export function parseRegistrarConfig(env: Record<string, string | undefined>): RegistrarConfig {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  const config = parsed.data;
  return {
    target: {
      destinationArn: config.DESTINATION_ARN,
      filterName: config.FILTER_NAME,
      filterPattern: config.FILTER_PATTERN,
    },
    selections: config.REGISTRATION_SELECTIONS,
    excludedLogGroups: config.EXCLUDED_LOG_GROUPS,
  };
}

type CloudTrailLogsEvent = EventBridgeEvent<
  "AWS API Call via CloudTrail",
  { eventName?: string; requestParameters?: { logGroupName?: string; resourceArn?: string } | null }
>;

export type RegistrarEvent = CloudFormationCustomResourceEvent | CloudTrailLogsEvent;

export interface RegistrarResult {
  PhysicalResourceId?: string;
  Data?: Record<string, string>;
}

export interface RegistrarDeps {
  logs: CloudWatchLogsClient;
  config: RegistrarConfig;
  logger: Logger;
}

/** Handles one event; exported apart from `handler` so tests pass their own clients. */
export async function registerLogGroups(
  event: RegistrarEvent,
  deps: RegistrarDeps,
): Promise<RegistrarResult> {
  if ("RequestType" in event) return onDeploy(event, deps);
  return onCloudTrail(event, deps);
}

async function onDeploy(
  event: CloudFormationCustomResourceEvent,
  deps: RegistrarDeps,
): Promise<RegistrarResult> {
  const selections = selectionsJson.parse(event.ResourceProperties.Selections ?? "[]");
  const physicalResourceId = `loki-shipper-registration-${deps.config.target.filterName}`;
  const options = { excludedLogGroups: deps.config.excludedLogGroups };
  if (event.RequestType === "Delete") {
    // A failed unlink must not block the deletion of the stack: report it in the logs instead.
    const outcome = await runSelections(selections, (selection) =>
      planUnlink(deps.logs, selection, deps.config.target),
    ).then(
      (plans) => applyAll(plans, deps),
      (error: unknown) => ({ applied: 0, failures: [String(error)] }),
    );
    if (outcome.failures.length > 0) deps.logger.error("Unlinking failed", { failures: outcome.failures });
    return { PhysicalResourceId: physicalResourceId };
  }
  const plans = await runSelections(selections, (selection) =>
    planLink(deps.logs, selection, deps.config.target, options),
  );
  const outcome = await applyAll(plans, deps);
  if (outcome.failures.length > 0) {
    throw new LogGroupRegistryError(
      `Could not subscribe ${outcome.failures.length} log group(s): ${outcome.failures.join("; ")}`,
    );
  }
  return {
    PhysicalResourceId: physicalResourceId,
    Data: { Changed: String(outcome.applied) },
  };
}

async function onCloudTrail(event: CloudTrailLogsEvent, deps: RegistrarDeps): Promise<RegistrarResult> {
  const logGroupName = logGroupNameOf(event);
  if (!logGroupName) {
    deps.logger.warn("Event names no log group; ignored", { eventName: event.detail?.eventName });
    return {};
  }
  const tags = await readTags(deps.logs, event, logGroupName);
  const wanted = deps.config.selections.filter((selection) =>
    selectionIncludes(selection, { name: logGroupName, tags }),
  );
  if (wanted.length === 0) {
    deps.logger.info("Log group matches no selection; left alone", { logGroupName });
    return {};
  }
  const plan = await planLink(deps.logs, { names: [logGroupName] }, deps.config.target, {
    excludedLogGroups: deps.config.excludedLogGroups,
  });
  const outcome = await applyAll([plan], deps);
  if (outcome.failures.length > 0) {
    // Thrown so that Lambda retries the asynchronous invocation and then keeps it in the DLQ.
    throw new LogGroupRegistryError(`Could not subscribe ${logGroupName}: ${outcome.failures.join("; ")}`);
  }
  return {};
}

function logGroupNameOf(event: CloudTrailLogsEvent): string | undefined {
  const parameters = event.detail?.requestParameters;
  if (parameters?.logGroupName) return parameters.logGroupName;
  // TagResource names the group by ARN: arn:aws:logs:<region>:<account>:log-group:<name>[:*]
  const match = /:log-group:(.+?)(?::\*)?$/.exec(parameters?.resourceArn ?? "");
  return match?.[1];
}

async function readTags(
  logs: CloudWatchLogsClient,
  event: CloudTrailLogsEvent,
  logGroupName: string,
): Promise<Record<string, string>> {
  const resourceArn = `arn:aws:logs:${event.region}:${event.account}:log-group:${logGroupName}`;
  try {
    const response = await logs.send(new ListTagsForResourceCommand({ resourceArn }));
    return response.tags ?? {};
  } catch (error) {
    if ((error as Error).name === "ResourceNotFoundException") {
      throw new InputError(`Log group ${logGroupName} from the CloudTrail event does not exist`, {
        cause: error,
      });
    }
    throw error;
  }
}

async function runSelections(
  selections: LogGroupSelection[],
  plan: (selection: LogGroupSelection) => Promise<RegistryPlan>,
): Promise<RegistryPlan[]> {
  const plans: RegistryPlan[] = [];
  for (const selection of selections) plans.push(await plan(selection));
  return plans;
}

async function applyAll(plans: RegistryPlan[], deps: RegistrarDeps) {
  let applied = 0;
  const failures: string[] = [];
  for (const plan of plans) {
    deps.logger.info(`Plan to ${plan.operation}`, { changes: describePlan(plan) });
    const outcome = await applyPlan(deps.logs, plan);
    applied += outcome.applied.length;
    failures.push(...outcome.failed.map((failure) => failure.error));
  }
  return { applied, failures };
}

const logger = new Logger();
// Built on the first (cold) invocation rather than at import, so that tests can import
// registerLogGroups without the Lambda environment; a bad variable still fails the first call.
let deps: RegistrarDeps | undefined;

export async function handler(event: RegistrarEvent): Promise<RegistrarResult> {
  deps ??= { logs: new CloudWatchLogsClient({}), config: parseRegistrarConfig(process.env), logger };
  return registerLogGroups(event, deps);
}
