import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { DeliveryReport } from "../core/delivery/deliver.ts";
import {
  droppedMetric,
  METRICS_NAMESPACE,
  refusedMetric,
  SERVICE,
  SHIPPER_METRIC,
} from "../core/metric-names.ts";

/**
 * Structured JSON logs and CloudWatch embedded-metric-format (EMF) metrics, via Powertools.
 * Metric names come from core/metric-names.ts: dashboards and alarms refer to them.
 */

export interface Observability {
  logger: Logger;
  metrics: Metrics;
  serviceName: string;
}

export function createObservability(
  serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE.shipper,
): Observability {
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
      serviceName,
    }),
    serviceName,
  };
}

export function recordDelivery(metrics: Metrics, report: DeliveryReport): void {
  metrics.addMetric(SHIPPER_METRIC.eventsIn, MetricUnit.Count, report.received);
  metrics.addMetric(SHIPPER_METRIC.eventsShipped, MetricUnit.Count, report.pushed);
  metrics.addMetric(SHIPPER_METRIC.eventsSpilled, MetricUnit.Count, report.spilled);
  metrics.addMetric(SHIPPER_METRIC.eventsAlreadyStored, MetricUnit.Count, report.alreadyStored);
  // EventsDropped_rule_2: "dropped by rule 2", one metric per rule like EventsRefused_<reason>.
  recordBreakdown(metrics, SHIPPER_METRIC.eventsDropped, droppedMetric, report.dropped);
  metrics.addMetric(SHIPPER_METRIC.pushRetries, MetricUnit.Count, report.retries);
  metrics.addMetric(SHIPPER_METRIC.pushRequests, MetricUnit.Count, report.requests);
  metrics.addMetric(SHIPPER_METRIC.bytesSent, MetricUnit.Bytes, report.bytes);
  recordBreakdown(metrics, SHIPPER_METRIC.eventsRefused, refusedMetric, report.refused);
}

/**
 * A total and one metric per key (EventsRefused_too_old, ...): kept in the same EMF document,
 * unlike per-key dimensions, which would need one document each.
 */
function recordBreakdown(
  metrics: Metrics,
  totalName: string,
  nameOf: (key: string) => string,
  counts: Record<string, number>,
): void {
  const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
  metrics.addMetric(totalName, MetricUnit.Count, total);
  for (const [key, count] of Object.entries(counts)) metrics.addMetric(nameOf(key), MetricUnit.Count, count);
}

export function recordPushAttempt(
  metrics: Metrics,
  attempt: { status: number | "network_error"; durationMs: number },
): void {
  metrics.addMetric(SHIPPER_METRIC.pushLatency, MetricUnit.Milliseconds, attempt.durationMs);
  if (attempt.status === 429) metrics.addMetric(SHIPPER_METRIC.pushThrottled, MetricUnit.Count, 1);
}
