import { readFileSync } from "node:fs";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { parser } from "@grafana/lezer-logql";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DASHBOARD_FILE, dashboardJson, LOGQL } from "../../dashboards/loki-shipper.ts";
import { GroupMetrics } from "../../functions/core/delivery/delivery-metrics.ts";
import { createLokiPushClient } from "../../functions/core/loki/loki-target.ts";
import { AWS_METRIC, METRICS_NAMESPACE, SERVICE } from "../../functions/core/metric-names.ts";
import { shipSubscriptionEvent } from "../../functions/shipper/ship-subscription.ts";
import { LokiShipper } from "../../infra/constructs/loki-shipper.ts";
import { backfillHistory, liveShipper, REGION, seedSampleHistory } from "../../scripts/demo/demo-data.ts";
import { type MotoServer, startMotoServer } from "../../scripts/moto-server.ts";
import { dataMessage, logEvent, subscriptionEvent } from "../fixtures/subscription.ts";
import { createTaggedLogGroup, logs } from "../helpers/log-groups.ts";
import { startTestLoki, type TestLoki } from "../helpers/loki.ts";
import { createTestBucket, s3 } from "../helpers/s3.ts";
import { lambda, lambdaContext, shipperConfig, shipperEnv } from "../helpers/shipper.ts";
import { testStack } from "../infra/cdk-helpers.ts";

/**
 * The dashboard in dashboards/: the checked-in JSON is what the code generates, every CloudWatch
 * metric it (and every alarm) names is one the code emits with those dimensions, and every LogQL
 * query parses with Grafana's grammar and returns series from Loki after the demo's data is shipped.
 */

interface Target {
  namespace?: string;
  metricName?: string;
  dimensions?: Record<string, string>;
  matchExact?: boolean;
  expr?: string;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as {
  panels: { title: string; type: string; targets?: Target[] }[];
};
const targets = dashboard.panels.flatMap((panel) => panel.targets ?? []);

describe("the checked-in dashboard", () => {
  it("is what dashboards/loki-shipper.ts generates (run npm run dashboard after a change)", () => {
    expect(readFileSync(DASHBOARD_FILE, "utf8")).toBe(dashboardJson());
  });

  it("takes its data sources from variables, so that it imports into any Grafana", () => {
    const uids = new Set(
      JSON.stringify(dashboard)
        .match(/"uid":"[^"]*"/g)
        ?.filter((uid) => uid !== '"uid":"loki-shipper"'),
    );
    expect([...uids].sort()).toEqual([`"uid":"\${cloudwatch}"`, `"uid":"\${loki}"`]);
  });
});

/** Metric name -> the dimension-name sets it is emitted with (from EMF documents). */
type Emitted = Map<string, Set<string>>;

function collectEmf(emitted: Emitted, document: unknown): void {
  const emf = document as {
    _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  };
  for (const directive of emf._aws.CloudWatchMetrics) {
    expect(directive.Namespace).toBe(METRICS_NAMESPACE);
    for (const { Name } of directive.Metrics) {
      const sets = emitted.get(Name) ?? new Set<string>();
      for (const dimensions of directive.Dimensions) sets.add([...dimensions].sort().join(","));
      emitted.set(Name, sets);
    }
  }
}

/** What the live shipper emits over a delivery, a 429 and a malformed payload (real shipper code). */
async function emittedByTheShipper(loki: TestLoki): Promise<Emitted> {
  const emitted: Emitted = new Map();
  const bucket = await createTestBucket();
  const logGroup = await createTaggedLogGroup("emitted", { runtime: "python" });
  const config = shipperConfig(shipperEnv({ bucket, lokiUrl: loki.url, tenant: loki.tenant }));
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE.shipper });
  const groups: GroupMetrics[] = [];
  const deps = {
    s3,
    logs,
    lambda,
    loki: () => createLokiPushClient(config.loki),
    logger: new Logger({ serviceName: SERVICE.shipper, logLevel: "SILENT" as const }),
    metrics,
    groupMetrics: (name: string) => {
      const group = new GroupMetrics(name, "live", SERVICE.shipper);
      groups.push(group);
      return group;
    },
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  };
  // A 429 the first time: the push is retried and then accepted.
  loki.setFault({ kind: "status", status: 429, times: 1 });
  await shipSubscriptionEvent(
    subscriptionEvent(dataMessage({ logGroup, events: [logEvent(Date.now() - 5_000, "hello")] })),
    lambdaContext(),
    config,
    { ...deps, groupMetrics: (name: string) => Object.assign(deps.groupMetrics(name), { publish() {} }) },
  );
  await shipSubscriptionEvent({ awslogs: { data: "not base64 gzip" } }, lambdaContext(), config, deps);
  collectEmf(emitted, metrics.serializeMetrics());
  for (const group of groups) collectEmf(emitted, group.serialize());
  return emitted;
}

describe("CloudWatch metrics: dashboard, alarms and code agree", () => {
  let loki: TestLoki;
  let emitted: Emitted;
  beforeAll(async () => {
    loki = await startTestLoki();
    emitted = await emittedByTheShipper(loki);
  });
  afterAll(async () => {
    await loki?.close();
  });

  it("charts only LokiShipper metrics the code emits, with the dimensions it emits them with", () => {
    const charted = targets.filter((target) => target.namespace === METRICS_NAMESPACE);
    expect(charted.length).toBeGreaterThan(5);
    for (const target of charted) {
      const wanted = Object.keys(target.dimensions ?? {});
      const sets = [...(emitted.get(target.metricName ?? "") ?? [])].map((set) => set.split(","));
      // matchExact: the same dimensions; otherwise a metric whose dimensions include them.
      const found = sets.some((set) =>
        target.matchExact
          ? set.sort().join() === [...wanted].sort().join()
          : wanted.every((name) => set.includes(name)),
      );
      expect(found, `${target.metricName} {${wanted.join(", ")}} among ${JSON.stringify(sets)}`).toBe(true);
      if (target.dimensions?.service) expect(target.dimensions.service).toBe(SERVICE.shipper);
    }
  });

  it("charts AWS's own metrics only under the names the alarms use", () => {
    const known = new Map<string, string[]>(
      Object.values(AWS_METRIC).map(({ namespace, dimension: _dimension, ...names }) => [
        namespace,
        Object.values(names),
      ]),
    );
    for (const target of targets.filter((t) => t.namespace?.startsWith("AWS/"))) {
      expect(known.get(target.namespace ?? ""), target.namespace).toContain(target.metricName);
    }
  });

  it("alarms only on LokiShipper metrics the code emits, under the shipper's service dimension", () => {
    const stack = testStack();
    new LokiShipper(stack, "Shipper", { lokiUrl: "https://loki.example.com" });
    const alarms = Object.values(Template.fromStack(stack).findResources("AWS::CloudWatch::Alarm")) as {
      Properties: { Namespace?: string; MetricName?: string; Dimensions?: { Name: string; Value: string }[] };
    }[];
    const own = alarms.filter((alarm) => alarm.Properties.Namespace === METRICS_NAMESPACE);
    expect(own.map((alarm) => alarm.Properties.MetricName).sort()).toEqual([
      "EventsRefused",
      "EventsSpilled",
    ]);
    for (const { Properties } of own) {
      expect(emitted.get(Properties.MetricName ?? "")).toContain("service");
      expect(Properties.Dimensions).toEqual([{ Name: "service", Value: SERVICE.shipper }]);
    }
  });
});

/** The dashboard's variables as Grafana fills them in before it sends a query. */
function interpolate(expr: string): string {
  return expr
    .replaceAll("$__auto", "5m")
    .replaceAll("$log_group", ".+")
    .replaceAll("$label", "name")
    .replaceAll("$search", "");
}

function parseErrors(expr: string): number[] {
  const errors: number[] = [];
  parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) errors.push(node.from);
    },
  });
  return errors;
}

describe("the dashboard's LogQL on the demo's data", () => {
  const lokiTargets = targets.filter((target) => target.expr !== undefined);
  let moto: MotoServer;
  let loki: TestLoki;
  const range = { start: 0, end: 0 };

  beforeAll(async () => {
    moto = await startMotoServer();
    loki = await startTestLoki();
    const aws = {
      endpoint: moto.endpoint,
      region: REGION,
      credentials: { accessKeyId: "demo", secretAccessKey: "demo" },
    };
    const demoLogs = new CloudWatchLogsClient(aws);
    const demoS3 = new S3Client({ ...aws, forcePathStyle: true });
    const bucket = "loki-shipper-demo";
    await demoS3.send(
      new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }),
    );
    const env = { AWS_REGION: REGION, BUCKET_NAME: bucket, LOKI_URL: loki.url, LOKI_TENANT: loki.tenant };
    const demoStart = Date.now();
    await seedSampleHistory(demoLogs, aws, demoStart);
    const target = { logs: demoLogs, lambda: new LambdaClient(aws), s3: demoS3, bucket, env };
    await backfillHistory(target, demoStart);
    await liveShipper(target, demoStart)();
    range.start = demoStart - 3 * 3_600_000;
    range.end = Date.now() + 60_000;
  }, 240_000);
  afterAll(async () => {
    await loki?.close();
    await moto?.stop();
  });

  it("has a query for every Loki panel: events per group and per label, bytes, newest entry, logs", () => {
    expect(lokiTargets.map((target) => target.expr)).toEqual(Object.values(LOGQL));
  });

  it.each(Object.entries(LOGQL))("%s parses with Grafana's LogQL grammar", (_name, expr) => {
    expect(parseErrors(interpolate(expr))).toEqual([]);
  });

  it.each(Object.entries(LOGQL))("%s returns series from Loki", async (_name, expr) => {
    const url = new URL("/loki/api/v1/query_range", loki.url);
    url.searchParams.set("query", interpolate(expr));
    url.searchParams.set("start", String(range.start * 1_000_000));
    url.searchParams.set("end", String(range.end * 1_000_000));
    url.searchParams.set("step", "300");
    url.searchParams.set("limit", "100");
    const response = await fetch(url, { headers: { "X-Scope-OrgID": loki.tenant } });
    const body = await response.text();
    expect(response.status, body).toBe(200);
    const { data } = JSON.parse(body) as { data: { resultType: string; result: Record<string, unknown>[] } };
    expect(data.resultType).toBe(expr.includes("_over_time") ? "matrix" : "streams");
    expect(data.result.length).toBeGreaterThan(0);
    if (data.resultType === "matrix") {
      // Aggregated by the chosen labels: the hour streams (time_shard) of a group make one series.
      for (const series of data.result) expect(series.metric).not.toHaveProperty("time_shard");
    }
  });
});
