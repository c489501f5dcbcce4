import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { type DeliveryPath, DIMENSION, GROUP_METRIC, METRICS_NAMESPACE } from "../metric-names.ts";
import type { AcceptedPush, DeliveryReport } from "./deliver.ts";

/**
 * EMF metrics of one log group on one delivery path (live, replay, backfill): events shipped,
 * spilled and refused, and the freshness of what Loki accepted. Shared by the live shipper and the
 * workflow tasks, so that the dashboard reads the same names for every path.
 */
export class GroupMetrics {
  readonly #metrics: Metrics;

  constructor(logGroup: string, path: DeliveryPath, serviceName: string) {
    // Default dimensions, not request dimensions: Powertools flushes on its own after 100 values
    // of one metric, and only default dimensions survive that flush.
    this.#metrics = new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
      serviceName,
      defaultDimensions: { [DIMENSION.path]: path, [DIMENSION.logGroup]: logGroup },
    });
  }

  delivered(report: Pick<DeliveryReport, "pushed" | "spilled" | "refused">): void {
    const refused = Object.values(report.refused).reduce((sum, count) => sum + count, 0);
    this.#metrics.addMetric(GROUP_METRIC.eventsShipped, MetricUnit.Count, report.pushed);
    this.#metrics.addMetric(GROUP_METRIC.eventsSpilled, MetricUnit.Count, report.spilled);
    this.#metrics.addMetric(GROUP_METRIC.eventsRefused, MetricUnit.Count, refused);
  }

  /** One value per accepted push: CloudWatch reads p50/p99 from the values of the period. */
  accepted(push: AcceptedPush): void {
    this.#metrics.addMetric(GROUP_METRIC.eventAgeAtPush, MetricUnit.Milliseconds, push.oldestAgeMs);
  }

  /** Writes the EMF document to stdout, where Lambda's log group takes it to CloudWatch. */
  publish(): void {
    if (this.#metrics.hasStoredMetrics()) this.#metrics.publishStoredMetrics();
  }

  /** The EMF document as it would be published (tests). */
  serialize(): ReturnType<Metrics["serializeMetrics"]> {
    return this.#metrics.serializeMetrics();
  }
}

/** The path a replay unit's events travel: a backfill's chunks (its own run, or a later replay of it), or spill/ and rejected/. */
export function replayPath(source: "backfill" | "run" | "spill" | "rejected"): DeliveryPath {
  return source === "backfill" || source === "run" ? "backfill" : "replay";
}
