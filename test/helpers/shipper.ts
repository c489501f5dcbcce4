import { gzipSync } from "node:zlib";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { expect } from "vitest";
import type { DeliveryReport } from "../../functions/core/delivery/deliver.ts";
import { CustomLogGroupCache } from "../../functions/core/labels/function-log-groups.ts";
import { FunctionFactsCache } from "../../functions/core/labels/function-lookup.ts";
import { LogGroupTagCache } from "../../functions/core/labels/log-group-tags.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { createLokiPushClient } from "../../functions/core/loki/loki-target.ts";
import { getChunk } from "../../functions/core/storage/run-store.ts";
import {
  parseShipperConfig,
  type ShipperConfig,
  type ShipperDeps,
  type ShipResult,
  shipSubscriptionEvent,
} from "../../functions/shipper/ship-subscription.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION } from "./aws.ts";
import { groupBy, logs } from "./log-groups.ts";
import { s3 } from "./s3.ts";

/** The Lambda client every test shares (moto's server): the shipper reads functions' tags and runtime. */
export const lambda = new LambdaClient(awsClientConfig());

/** Where the shipper of a test delivers: a bucket and a Loki tenant. */
export interface ShipperTarget {
  bucket: string;
  lokiUrl: string;
  tenant: string;
}

/** The shipper's environment for one test tenant (a short deadline reserve keeps drills quick). */
export function shipperEnv(
  target: ShipperTarget,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    BUCKET_NAME: target.bucket,
    LOKI_URL: target.lokiUrl,
    LOKI_TENANT: target.tenant,
    SHIPPER_DEADLINE_RESERVE: "1s",
    ...extra,
  };
}

export function shipperConfig(env: Record<string, string>): ShipperConfig {
  return parseShipperConfig({ AWS_REGION: TEST_REGION, ...env });
}

export function shipperDeps(config: ShipperConfig, overrides: Partial<ShipperDeps> = {}): ShipperDeps {
  return {
    s3,
    logs,
    lambda,
    loki: () => createLokiPushClient(config.loki),
    logger: new Logger({ serviceName: "shipper-test", logLevel: "SILENT" }),
    metrics: quietMetrics(),
    tagCache: new LogGroupTagCache(),
    functionCache: new FunctionFactsCache(),
    customLogGroupCache: new CustomLogGroupCache(),
    retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 200 },
    ...overrides,
  };
}

/** Metrics that are collected but not printed (EMF output would flood the test log). */
function quietMetrics(): Metrics {
  const previous = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  try {
    return new Metrics({ namespace: "LokiShipperTest", serviceName: "shipper-test" });
  } finally {
    if (previous === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = previous;
  }
}

export function lambdaContext(remainingMs = 30_000) {
  const end = Date.now() + remainingMs;
  return { getRemainingTimeInMillis: () => end - Date.now() };
}

/** The subscription event CloudWatch Logs sends for one log stream's events. */
export function subscriptionEventOf(
  logGroup: string,
  logStream: string,
  events: LogEvent[],
  owner = TEST_ACCOUNT,
) {
  const payload = {
    messageType: "DATA_MESSAGE",
    owner,
    logGroup,
    logStream,
    subscriptionFilters: ["loki-shipper"],
    logEvents: events.map(({ id, timestamp, message }) => ({ id, timestamp, message })),
  };
  return { awslogs: { data: gzipSync(JSON.stringify(payload)).toString("base64") } };
}

/**
 * Ships events the way the live shipper does: a subscription DATA_MESSAGE per log stream through
 * the shipper's own code (shipSubscriptionEvent), with CloudWatch's event ids. `env` holds at
 * least LOKI_URL and LOKI_TENANT; `overrides` replaces shipper dependencies (a faulty client).
 * Each invocation has 20 s left, of which the shipper keeps 1 s back: with Loki up everything is
 * pushed, with Loki down it is spilled as unreachable.
 */
export async function shipLive(
  logGroup: string,
  events: LogEvent[],
  env: Record<string, string>,
  bucket: string,
  overrides: Partial<ShipperDeps> = {},
  /** The account the events come from (the subscription payload's `owner`). */
  owner = TEST_ACCOUNT,
): Promise<DeliveryReport[]> {
  const config = shipperConfig({ SHIPPER_DEADLINE_RESERVE: "1s", BUCKET_NAME: bucket, ...env });
  const deps = shipperDeps(config, {
    retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
    ...overrides,
  });
  const reports: DeliveryReport[] = [];
  for (const [logStream, streamEvents] of groupBy(events, (event) => event.logStream)) {
    const result: ShipResult = await shipSubscriptionEvent(
      subscriptionEventOf(logGroup, logStream, streamEvents, owner),
      lambdaContext(20_000),
      config,
      deps,
    );
    if (result.outcome === "delivered") reports.push(result.report);
  }
  return reports;
}

/** What one round of live shipping did, and why it spilled. */
export interface ShippingRound {
  received: number;
  pushed: number;
  spilled: number;
  /** The reason in the header of each spill/ chunk the round wrote. */
  spillReasons: string[];
}

export async function shippingRound(bucket: string, reports: DeliveryReport[]): Promise<ShippingRound> {
  const spillKeys = reports.flatMap((report) => report.chunkKeys.filter((key) => key.startsWith("spill/")));
  const spillReasons: string[] = [];
  for (const key of spillKeys) {
    const found = await getChunk({ s3, bucket }, key);
    spillReasons.push(found?.chunk.header.reason ?? `no chunk at ${key}`);
  }
  const total = (count: "received" | "pushed" | "spilled") =>
    reports.reduce((sum, report) => sum + report[count], 0);
  return { received: total("received"), pushed: total("pushed"), spilled: total("spilled"), spillReasons };
}

/**
 * The outage drills' check: a round with Loki up pushed everything and spilled nothing; a round
 * with Loki down pushed nothing and spilled everything, because Loki was unreachable.
 */
export function expectRoundMatchesLoki(round: ShippingRound, lokiUp: boolean, label: string): void {
  if (lokiUp) {
    expect({ label, ...round }).toEqual({
      label,
      received: round.received,
      pushed: round.received,
      spilled: 0,
      spillReasons: [],
    });
  } else {
    expect({ label, pushed: round.pushed, spilled: round.spilled }).toEqual({
      label,
      pushed: 0,
      spilled: round.received,
    });
    expect(round.spillReasons.length).toBeGreaterThan(0);
    for (const reason of round.spillReasons) expect(reason).toMatch(/^Loki is unreachable: /);
  }
}
