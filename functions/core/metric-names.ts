/**
 * The CloudWatch metrics of loki-shipper, in one place: the Lambda code emits them (EMF, through
 * Powertools), the CDK alarms and the Grafana dashboard read them. Plain constants only, so that
 * CDK and the dashboard generator import them without pulling in Powertools, and the Lambda
 * bundles without pulling in CDK or the Grafana SDK. test/metrics/metric-names.test.ts fails
 * when the emitted, alarmed and charted names drift apart.
 */

export const METRICS_NAMESPACE = "LokiShipper";

/** Powertools' `service` dimension of each kind of function. */
export const SERVICE = {
  shipper: "loki-shipper",
  workflow: "loki-shipper-workflow",
} as const;

export const DIMENSION = {
  /** Set by Powertools from the service name on every metric. */
  service: "service",
  logGroup: "LogGroup",
  /** Which path delivered the events: see DeliveryPath. */
  path: "Path",
} as const;

/** live: the subscription shipper; replay: spill/ and rejected/; backfill: a backfill run's chunks. */
export type DeliveryPath = "live" | "replay" | "backfill";
export const DELIVERY_PATHS: readonly DeliveryPath[] = ["live", "replay", "backfill"];

/** Per invocation, dimension `service` only (what the alarms watch). */
export const SHIPPER_METRIC = {
  eventsIn: "EventsIn",
  eventsShipped: "EventsShipped",
  eventsSpilled: "EventsSpilled",
  /** Part of EventsShipped: events Loki held already (a retry or duplicate delivery), not sent again. */
  eventsAlreadyStored: "EventsAlreadyStored",
  eventsRefused: "EventsRefused",
  /** Dropped by the operator's drop rules (LOG_RULES), on purpose. */
  eventsDropped: "EventsDropped",
  pushRetries: "PushRetries",
  pushRequests: "PushRequests",
  bytesSent: "BytesSent",
  pushLatency: "PushLatency",
  /** Pushes Loki answered 429 (tenant rate, stream rate or stream limit), retried or spilled. */
  pushThrottled: "PushThrottled",
  tagLookupFailures: "TagLookupFailures",
  malformedPayloads: "MalformedPayloads",
  /** Source accounts whose reader role cannot be assumed: once per account and container. */
  sourceAccountsWithoutReader: "SourceAccountsWithoutReader",
} as const;

/** Refused events of one reason (too_old, line_too_long...), beside the EventsRefused total. */
export function refusedMetric(reason: string): string {
  return `${SHIPPER_METRIC.eventsRefused}_${reason}`;
}

/** Events dropped by one rule (EventsDropped_rule_2), beside the EventsDropped total. */
export function droppedMetric(rule: string): string {
  return `${SHIPPER_METRIC.eventsDropped}_${rule.replace(" ", "_")}`;
}

/**
 * Per log group and delivery path, dimensions `service`, `Path`, `LogGroup`: counts and the
 * freshness of what Loki accepted. Kept to these few because each log group multiplies them
 * (CloudWatch bills each dimension combination as one custom metric).
 */
export const GROUP_METRIC = {
  eventsShipped: SHIPPER_METRIC.eventsShipped,
  eventsSpilled: SHIPPER_METRIC.eventsSpilled,
  eventsRefused: SHIPPER_METRIC.eventsRefused,
  /** Milliseconds from the oldest event of a push to Loki's acceptance of it; one value per push. */
  eventAgeAtPush: "EventAgeAtPush",
} as const;

/** Every metric name the code emits under METRICS_NAMESPACE (refused-by-reason names aside). */
export const EMITTED_METRIC_NAMES: readonly string[] = [
  ...new Set([...Object.values(SHIPPER_METRIC), ...Object.values(GROUP_METRIC)]),
];

/** AWS's own metrics of the pipeline's resources, as the alarms and the dashboard read them. */
export const AWS_METRIC = {
  lambda: { namespace: "AWS/Lambda", dimension: "FunctionName", errors: "Errors", throttles: "Throttles" },
  sqs: {
    namespace: "AWS/SQS",
    dimension: "QueueName",
    visibleMessages: "ApproximateNumberOfMessagesVisible",
  },
  states: {
    namespace: "AWS/States",
    dimension: "StateMachineArn",
    started: "ExecutionsStarted",
    succeeded: "ExecutionsSucceeded",
    failed: "ExecutionsFailed",
    timedOut: "ExecutionsTimedOut",
  },
} as const;
