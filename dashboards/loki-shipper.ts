import { fileURLToPath } from "node:url";
import { MetricsQueryBuilder } from "@grafana/grafana-foundation-sdk/cloudwatch";
import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import {
  type Dashboard,
  DashboardBuilder,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  TextBoxVariableBuilder,
  VariableRefresh,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { PanelBuilder as LogsPanel } from "@grafana/grafana-foundation-sdk/logs";
import { DataqueryBuilder as LokiQuery } from "@grafana/grafana-foundation-sdk/loki";
import { PanelBuilder as TablePanel } from "@grafana/grafana-foundation-sdk/table";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import {
  AWS_METRIC,
  type DeliveryPath,
  DIMENSION,
  GROUP_METRIC,
  METRICS_NAMESPACE,
  SERVICE,
  SHIPPER_METRIC,
} from "../functions/core/metric-names.ts";

/**
 * The loki-shipper dashboard, as code with Grafana's foundation SDK. `npm run dashboard` writes it
 * to loki-shipper.json, which users import; test/dashboards/ checks that the file matches this
 * code, that every CloudWatch metric is one the code emits and that every LogQL query runs.
 */

export const DASHBOARD_FILE = fileURLToPath(new URL("./loki-shipper.json", import.meta.url));

// Data sources are variables: the JSON imports into any Grafana, whatever its data sources are called.
const CLOUDWATCH = { type: "cloudwatch", uid: `\${cloudwatch}` };
const LOKI = { type: "loki", uid: `\${loki}` };

/** The streams the dashboard reads: every stream loki-shipper writes carries source="cloudwatch". */
const SELECTOR = '{source="cloudwatch", log_group=~"$log_group"}';

/**
 * The LogQL of the Loki panels. Every metric query aggregates `by` the labels it shows, so that
 * the hour streams of one group (label time_shard) add up to one series.
 */
export const LOGQL = {
  eventsPerGroup: `sum by (log_group) (count_over_time(${SELECTOR} [$__auto]))`,
  eventsPerLabel: `sum by ($label) (count_over_time(${SELECTOR} [$__auto]))`,
  bytesPerGroup: `sum by (log_group) (bytes_over_time(${SELECTOR} [$__auto]))`,
  // One-minute buckets: the table keeps the time of each group's last non-empty one.
  newestPerGroup: `sum by (log_group) (count_over_time(${SELECTOR} [1m]))`,
  logs: `${SELECTOR} |= "$search"`,
} as const;

let nextRefId = 0;
const refId = () => String.fromCharCode(65 + (nextRefId++ % 26));

/** A CloudWatch metric search: with `matchExact` false, any metric whose dimensions include these. */
function metric(
  namespace: string,
  metricName: string,
  dimensions: Record<string, string>,
  statistic: string,
  label: string,
  matchExact = false,
): MetricsQueryBuilder {
  return new MetricsQueryBuilder()
    .datasource(CLOUDWATCH)
    .refId(refId())
    .region("$region")
    .namespace(namespace)
    .metricName(metricName)
    .dimensions(dimensions)
    .matchExact(matchExact)
    .statistic(statistic)
    .period("")
    .label(label);
}

/** A LokiShipper metric per log group on one delivery path. */
const perGroup = (
  metricName: string,
  path: DeliveryPath,
  statistic = "Sum",
  label = `\${PROP('Dim.LogGroup')}`,
) =>
  metric(
    METRICS_NAMESPACE,
    metricName,
    { [DIMENSION.path]: path, [DIMENSION.logGroup]: "*" },
    statistic,
    label,
  );

/** A LokiShipper metric of the live shipper as a whole (what the alarms watch). */
const shipperTotal = (metricName: string, label: string) =>
  metric(METRICS_NAMESPACE, metricName, { [DIMENSION.service]: SERVICE.shipper }, "Sum", label, true);

function timeseries(
  title: string,
  description: string,
  targets: cog.Builder<cog.Dataquery>[],
  unit = "short",
) {
  return new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(targets.some((target) => target instanceof LokiQuery) ? LOKI : CLOUDWATCH)
    .targets(targets)
    .unit(unit)
    .height(8)
    .span(8);
}

function freshnessTargets(paths: DeliveryPath[]) {
  return paths.flatMap((path) =>
    ["p50", "p99"].map((statistic) =>
      perGroup(GROUP_METRIC.eventAgeAtPush, path, statistic, `${statistic} ${path} \${PROP('Dim.LogGroup')}`),
    ),
  );
}

function pipelineHealthPanels() {
  const { lambda, sqs, states } = AWS_METRIC;
  const executions = (variable: string, kind: string) =>
    [states.started, states.succeeded, states.failed, states.timedOut].map((name) =>
      metric(states.namespace, name, { [states.dimension]: `$${variable}` }, "Sum", `${kind} ${name}`),
    );
  return [
    timeseries("Events shipped per log group", "Events Loki accepted from the live shipper.", [
      perGroup(GROUP_METRIC.eventsShipped, "live"),
    ]),
    timeseries(
      "Events spilled per log group",
      "Kept in S3 spill/ (Loki unreachable, throttling, stream limit); the scheduled drain replays them. Runbook: SpilledAlarm.",
      [perGroup(GROUP_METRIC.eventsSpilled, "live")],
    ),
    timeseries(
      "Events refused per log group, and malformed payloads",
      "Refused by Loki (too old, too new, line too long), kept in rejected/ with the reason; malformed payloads in malformed/. Runbook: RefusedAlarm.",
      [
        perGroup(GROUP_METRIC.eventsRefused, "live"),
        shipperTotal(SHIPPER_METRIC.malformedPayloads, "malformed payloads"),
      ],
    ),
    timeseries(
      "Freshness, live (p50, p99)",
      "Age of the oldest event of each push when Loki accepted it: how far behind live shipping is.",
      freshnessTargets(["live"]),
      "ms",
    ),
    timeseries(
      "Freshness of replays and backfills (p50, p99)",
      "The same for spill/rejected replays and backfills, apart so that history does not drown the live figure.",
      freshnessTargets(["replay", "backfill"]),
      "ms",
    ),
    timeseries(
      "Pushes throttled (429) and retried",
      "Pushes Loki answered 429, and all retried pushes (429, 5xx, network).",
      [
        shipperTotal(SHIPPER_METRIC.pushThrottled, "429 answers"),
        shipperTotal(SHIPPER_METRIC.pushRetries, "retries"),
      ],
    ),
    timeseries("Shipper errors and throttles", "The shipper Lambda's failed and throttled invocations.", [
      metric(lambda.namespace, lambda.errors, { [lambda.dimension]: "$shipper_function" }, "Sum", "errors"),
      metric(
        lambda.namespace,
        lambda.throttles,
        { [lambda.dimension]: "$shipper_function" },
        "Sum",
        "throttles",
      ),
    ]),
    timeseries(
      "Dead-letter queue depth",
      "Invocations that failed after Lambda's retries. Runbook: DeadLetterAlarm.",
      [
        metric(
          sqs.namespace,
          sqs.visibleMessages,
          { [sqs.dimension]: "$dead_letter_queue" },
          "Maximum",
          "messages",
        ),
      ],
    ),
    timeseries("Backfill and replay executions", "Executions of the two state machines.", [
      ...executions("backfill_state_machine", "backfill"),
      ...executions("replay_state_machine", "replay"),
    ]),
  ];
}

function lokiQuery(expr: string, legendFormat: string): LokiQuery {
  return new LokiQuery().datasource(LOKI).refId(refId()).expr(expr).legendFormat(legendFormat);
}

function arrivalPanels() {
  const newest = new TablePanel()
    .title("Newest entry per log group")
    .description("Time of the last minute with entries, per log group (to the minute).")
    .datasource(LOKI)
    .withTarget(lokiQuery(LOGQL.newestPerGroup, "{{log_group}}"))
    .withTransformation({
      id: "reduce",
      options: { reducers: ["lastNotNull"], includeTimeField: true, mode: "seriesToRows" },
    })
    .height(12)
    .span(8);
  const logs = new LogsPanel()
    .title("Logs")
    .description("The chosen log groups, filtered by the search text.")
    .datasource(LOKI)
    .withTarget(lokiQuery(LOGQL.logs, ""))
    .height(12)
    .span(16);
  return [
    timeseries("Events per log group", "Entries in Loki per log group.", [
      lokiQuery(LOGQL.eventsPerGroup, "{{log_group}}"),
    ]),
    timeseries("Events per $label", "Entries in Loki per value of the chosen label.", [
      lokiQuery(LOGQL.eventsPerLabel, "{{$label}}"),
    ]),
    timeseries(
      "Bytes per log group",
      "Line bytes in Loki per log group.",
      [lokiQuery(LOGQL.bytesPerGroup, "{{log_group}}")],
      "bytes",
    ),
    newest,
    logs,
  ];
}

function variables() {
  const textbox = (name: string, label: string, description: string, value = "") =>
    new TextBoxVariableBuilder(name).label(label).description(description).defaultValue(value);
  return [
    new DatasourceVariableBuilder("cloudwatch").label("CloudWatch").type("cloudwatch"),
    new DatasourceVariableBuilder("loki").label("Loki").type("loki"),
    textbox("region", "AWS region", "Region of the pipeline stack; default: the data source's.", "default"),
    textbox(
      "shipper_function",
      "Shipper function",
      "Name of the shipper Lambda (the end of the ShipperFunctionArn stack output).",
    ),
    textbox(
      "dead_letter_queue",
      "Dead-letter queue",
      "Name of the queue (the end of the DeadLetterQueueUrl stack output).",
    ),
    textbox("backfill_state_machine", "Backfill state machine", "The BackfillStateMachineArn stack output."),
    textbox("replay_state_machine", "Replay state machine", "The ReplayStateMachineArn stack output."),
    new QueryVariableBuilder("log_group")
      .label("Log group")
      .datasource(LOKI)
      .query({
        type: 1,
        label: "log_group",
        stream: '{source="cloudwatch"}',
        refId: "LokiVariableQueryEditor-VariableQuery",
      })
      .definition('label_values({source="cloudwatch"}, log_group)')
      .refresh(VariableRefresh.OnTimeRangeChanged)
      .multi(true)
      .includeAll(true)
      .allValue(".+"),
    new QueryVariableBuilder("label")
      .label("Split by label")
      .description("A label of your tags (team, runtime, name...) to split the events by.")
      .datasource(LOKI)
      .query({ type: 0, refId: "LokiVariableQueryEditor-VariableQuery" })
      .definition("label_names()")
      .regex("/^(?!time_shard$|__).+$/")
      .refresh(VariableRefresh.OnTimeRangeChanged)
      .current({ text: "name", value: "name" }),
    textbox("search", "Search", "Text the log lines must contain."),
  ];
}

export function buildDashboard(): Dashboard {
  nextRefId = 0;
  const builder = new DashboardBuilder("loki-shipper")
    .uid("loki-shipper")
    .description("CloudWatch Logs to Loki: pipeline health (CloudWatch) and what arrived (Loki).")
    .tags(["loki-shipper", "loki", "cloudwatch"])
    .time({ from: "now-6h", to: "now" })
    .refresh("1m")
    .variables(variables())
    .withRow(new RowBuilder("Pipeline health (CloudWatch)"));
  for (const panel of pipelineHealthPanels()) builder.withPanel(panel);
  builder.withRow(new RowBuilder("What arrived (Loki)"));
  for (const panel of arrivalPanels()) builder.withPanel(panel);
  const dashboard = builder.build();
  // Panel ids: stable and unique, so that links and library references survive a re-import.
  dashboard.panels?.forEach((panel, index) => {
    panel.id = index + 1;
  });
  return dashboard;
}

/** The JSON users import (and the package ships). */
export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}
