import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { DeliveryReport } from "../core/delivery/deliver.ts";

/**
 * Structured JSON logs and CloudWatch embedded-metric-format (EMF) metrics, via Powertools.
 * Metric names are stable: dashboards and alarms refer to them.
 */

export const METRICS_NAMESPACE = "LokiShipper";

export interface Observability {
  logger: Logger;
  metrics: Metrics;
}

export function createObservability(
  serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? "loki-shipper",
): Observability {
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
      serviceName,
    }),
  };
}

export function recordDelivery(metrics: Metrics, report: DeliveryReport): void {
  metrics.addMetric("EventsIn", MetricUnit.Count, report.received);
  metrics.addMetric("EventsShipped", MetricUnit.Count, report.pushed);
  metrics.addMetric("EventsSpilled", MetricUnit.Count, report.spilled);
  const droppedTotal = Object.values(report.dropped).reduce((sum, count) => sum + count, 0);
  metrics.addMetric("EventsDropped", MetricUnit.Count, droppedTotal);
  // EventsDropped_rule_2: "dropped by rule 2", one metric per rule like EventsRefused_<reason>.
  for (const [rule, count] of Object.entries(report.dropped)) {
    metrics.addMetric(`EventsDropped_${rule.replace(" ", "_")}`, MetricUnit.Count, count);
  }
  metrics.addMetric("PushRetries", MetricUnit.Count, report.retries);
  metrics.addMetric("PushRequests", MetricUnit.Count, report.requests);
  metrics.addMetric("BytesSent", MetricUnit.Bytes, report.bytes);
  const refusedTotal = Object.values(report.refused).reduce((sum, count) => sum + count, 0);
  metrics.addMetric("EventsRefused", MetricUnit.Count, refusedTotal);
  // One metric per reason (EventsRefused_too_old, ...): kept in the same EMF document, unlike
  // per-reason dimensions, which would need one document each.
  for (const [reason, count] of Object.entries(report.refused)) {
    metrics.addMetric(`EventsRefused_${reason}`, MetricUnit.Count, count);
  }
}

export function recordPushLatency(metrics: Metrics, durationMs: number): void {
  metrics.addMetric("PushLatency", MetricUnit.Milliseconds, durationMs);
}
