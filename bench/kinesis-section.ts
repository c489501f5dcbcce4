/**
 * Kinesis batches through the shipper against direct subscription invocations, in one run: the
 * same payloads (100 events of 200-byte lines each, one log stream each) to the same Loki, once as
 * one `shipSubscriptionEvent` per payload (a subscription filter's invocation), once as Kinesis
 * batches of 100 records (`shipKinesisEvent`, the event source mapping's default batch size), from
 * 8 log groups (shipped 4 groups at a time) and from one group (its records in order). Fresh log
 * groups per row. Prints a table with the load average.
 * `npx node bench/kinesis-section.ts [--quick]`; another Loki: `LOKI_URL` (and `LOKI_TENANT_RAISED`).
 */

import { parseArgs } from "node:util";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import type { KinesisStreamEvent } from "aws-lambda";
import type { DeliveryReport } from "../functions/core/delivery/deliver.ts";
import type { GroupMetrics } from "../functions/core/delivery/delivery-metrics.ts";
import { LogGroupTagCache } from "../functions/core/labels/log-group-tags.ts";
import { createLokiPushClient } from "../functions/core/loki/loki-target.ts";
import { KINESIS_GROUP_CONCURRENCY, shipKinesisEvent } from "../functions/shipper/kinesis.ts";
import {
  parseShipperConfig,
  type ShipperDeps,
  shipSubscriptionEvent,
} from "../functions/shipper/ship-subscription.ts";
import { REGION } from "./aws-bed.ts";
import { type LiveOptions, prepareLiveRun } from "./live.ts";
import { loadAverage, machineInfo } from "./machine.ts";
import { openSectionBed } from "./section-bed.ts";
import { fmt, markdownTable } from "./table.ts";

const { values: args } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
const PAYLOADS = args.quick ? 100 : 300;
const EVENTS_PER_PAYLOAD = 100;
const LINE_BYTES = 200;
/** Lambda's default BatchSize for Kinesis. */
const RECORDS_PER_BATCH = 100;
const runLabel = `kin${Date.now().toString(36)}`;

type Payload = { awslogs: { data: string } };

interface Row {
  path: string;
  invocations: number;
  events: number;
  seconds: number;
  pushed: number;
  failed: number;
  cpuSeconds: number;
}

/** The records of a Kinesis batch carrying these payloads' data, as the event source mapping sends them. */
function kinesisBatches(payloads: Payload[]): KinesisStreamEvent[] {
  const batches: KinesisStreamEvent[] = [];
  for (let start = 0; start < payloads.length; start += RECORDS_PER_BATCH) {
    const Records = payloads.slice(start, start + RECORDS_PER_BATCH).map((payload, index) => ({
      eventSource: "aws:kinesis",
      eventSourceARN: `arn:aws:kinesis:${REGION}:123456789012:stream/central`,
      eventID: `shardId-000000000000:${start + index}`,
      eventName: "aws:kinesis:record",
      eventVersion: "1.0",
      invokeIdentityArn: "arn:aws:iam::123456789012:role/loki-shipper",
      awsRegion: REGION,
      kinesis: {
        kinesisSchemaVersion: "1.0",
        partitionKey: String(index),
        sequenceNumber: String(start + index).padStart(56, "0"),
        data: payload.awslogs.data,
        approximateArrivalTimestamp: Date.now() / 1000,
      },
    }));
    batches.push({ Records });
  }
  return batches;
}

/** Runs every invocation one after another (one shard, or one subscription invocation at a time). */
async function measure(
  path: string,
  invocations: (() => Promise<number>)[],
  pushed: () => number,
): Promise<Row> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  let failed = 0;
  for (const invoke of invocations) failed += await invoke();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    path,
    invocations: invocations.length,
    events: PAYLOADS * EVENTS_PER_PAYLOAD,
    seconds,
    pushed: pushed(),
    failed,
    cpuSeconds: (used.user + used.system) / 1e6,
  };
}

const machine = machineInfo();
const loadAtStart = loadAverage();
const { bed, bucket, endpoint, close } = await openSectionBed(runLabel);
try {
  const config = parseShipperConfig({
    AWS_REGION: REGION,
    BUCKET_NAME: bucket,
    LOKI_URL: endpoint.pushUrl,
    LOKI_TENANT: endpoint.raisedTenant,
  });
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  const totals = { pushed: 0 };
  const deps: ShipperDeps = {
    s3: bed.s3,
    logs: bed.logs,
    lambda: bed.lambda,
    loki: () => createLokiPushClient(config.loki),
    logger: new Logger({ serviceName: "loki-shipper-bench", logLevel: "SILENT" }),
    metrics: new Metrics({ namespace: "LokiShipperBench", serviceName: "loki-shipper-bench" }),
    tagCache: new LogGroupTagCache(),
    // Counts what each path delivered, the same way for both.
    groupMetrics: () =>
      ({
        delivered: (report: Pick<DeliveryReport, "pushed">) => {
          totals.pushed += report.pushed;
        },
        accepted: () => {},
        publish: () => {},
      }) as unknown as GroupMetrics,
  };
  const context = () => {
    const deadline = Date.now() + 60_000;
    return { getRemainingTimeInMillis: () => deadline - Date.now() };
  };
  const payloadsOf = (label: string, logGroups: number) => {
    const options = {
      bed,
      bucket,
      pushUrl: endpoint.pushUrl,
      tenant: endpoint.raisedTenant,
      format: "protobuf",
      logGroups,
      payloads: PAYLOADS,
      eventsPerPayload: EVENTS_PER_PAYLOAD,
      lineBytes: LINE_BYTES,
      inFlight: 1,
      warmUpMs: 0,
      runLabel: `${runLabel}-${label}`,
    } satisfies LiveOptions;
    return prepareLiveRun(options);
  };
  const pushedSince = () => {
    const before = totals.pushed;
    return () => totals.pushed - before;
  };
  const direct = async (label: string, payloads: Payload[]) =>
    measure(
      label,
      payloads.map((payload) => async () => {
        await shipSubscriptionEvent(payload, context(), config, deps);
        return 0;
      }),
      pushedSince(),
    );
  const kinesis = async (label: string, payloads: Payload[]) =>
    measure(
      label,
      kinesisBatches(payloads).map((batch) => async () => {
        const answer = await shipKinesisEvent(batch, context(), config, deps);
        return answer.batchItemFailures.length;
      }),
      pushedSince(),
    );
  // A warm-up round first (JIT, the tag cache, connections), not shown.
  await kinesis("warm-up", await payloadsOf("warm", 8));
  await direct("warm-up", await payloadsOf("warm-direct", 8));
  const rows = [
    await direct(
      "direct subscription, one payload per invocation, 8 log groups",
      await payloadsOf("direct", 8),
    ),
    await kinesis(
      `Kinesis, ${RECORDS_PER_BATCH} records per batch, 8 log groups (${KINESIS_GROUP_CONCURRENCY} at a time)`,
      await payloadsOf("kinesis8", 8),
    ),
    await kinesis(
      `Kinesis, ${RECORDS_PER_BATCH} records per batch, 1 log group (in order)`,
      await payloadsOf("kinesis1", 1),
    ),
  ];
  for (const row of rows)
    if (row.pushed !== row.events || row.failed > 0)
      throw new Error(`${row.path}: ${row.pushed} of ${row.events} pushed, ${row.failed} records failed`);
  console.log(
    `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; load average ${loadAtStart} at the start, ${loadAverage()} at the end\nLoki endpoint: ${endpoint.description}; tenant "${endpoint.raisedTenant}"; ${PAYLOADS} payloads of ${EVENTS_PER_PAYLOAD} events of ${LINE_BYTES} bytes per row\n`,
  );
  console.log(
    markdownTable(
      ["path", "invocations", "invocations/s", "events", "events/s", "events per CPU s", "seconds"],
      rows.map((row) => [
        row.path,
        fmt.int(row.invocations),
        fmt.fixed(row.invocations / row.seconds, 1),
        fmt.int(row.events),
        fmt.int(row.pushed / row.seconds),
        fmt.int(row.pushed / row.cpuSeconds),
        fmt.fixed(row.seconds, 2),
      ]),
    ),
  );
} finally {
  await close();
}
