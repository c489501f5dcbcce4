import { gunzipSync, gzipSync } from "node:zlib";
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import type { KinesisStreamEvent } from "aws-lambda";
import { beforeAll, describe, expect, it, type MockInstance, vi } from "vitest";
import { runReplayLocally } from "../../cli/local-workflow.ts";
import { type SourceAccountsOptions, stsAssumeRole } from "../../functions/core/accounts/source-accounts.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { SHIPPER_METRIC } from "../../functions/core/metric-names.ts";
import { shipKinesisEvent } from "../../functions/shipper/kinesis.ts";
import type { ShipperConfig, ShipperDeps } from "../../functions/shipper/ship-subscription.ts";
import { shipperSourceAccounts } from "../../functions/shipper/source-clients.ts";
import { createMotoFunction } from "../../scripts/moto-functions.ts";
import { controlMessage } from "../fixtures/subscription.ts";
import {
  accountClients,
  CentralStream,
  createAccountLogGroup,
  destinationPayloads,
} from "../helpers/accounts.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import { HOUR, logs, putEvents, readGroup, spreadEvents } from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, type LokiEntry, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkPrefix, createTestBucket, listKeys, readChunks, s3 } from "../helpers/s3.ts";
import { lambdaContext, shipperConfig, shipperDeps, shipperEnv } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * Many accounts through one central Kinesis stream, against moto and the Loki test server (or a
 * real Loki). Three moto accounts: the central one (moto's default, where the shipper runs), a
 * source with a reader role (111111111111, us-east-1) and one without (222222222222, eu-west-1).
 *
 * What is real: log groups, tags and Lambda functions in each account (created with credentials
 * from moto's sts:AssumeRole), the events as FilterLogEvents returns them, the shipper's own
 * sts:AssumeRole into 111111111111, and the central Kinesis stream (PutRecord, GetShardIterator,
 * GetRecords). What the test feeds as a CloudWatch Logs destination would: the records. moto
 * delivers a subscription only to a stream of the log group's own account (no cross-account
 * destinations), and its payloads carry numeric event ids where CloudWatch sends strings; so the
 * test writes each log stream's events into the central stream as the gzip'd DATA_MESSAGE a
 * destination writes, with the source account as owner and the filter name
 * `loki-shipper-<region>`. moto's AssumeRole does not check that a role exists: the account
 * without a reader role is an injected `assumeRole` that answers AccessDenied as STS does.
 */
const READER_ROLE = "loki-shipper-reader";
const SHIPPER_ARN = `arn:aws:lambda:${TEST_REGION}:${TEST_ACCOUNT}:function:loki-shipper`;

interface SourceGroup {
  accountId: string;
  region: string;
  logGroup: string;
  /** Labels its entries must carry, beyond source and log_group. */
  labels: Record<string, string>;
  /** Labels its entries must not carry. */
  absent: string[];
  client: Awaited<ReturnType<typeof accountClients>>["logs"];
}

const bed = useTestBed();
// One function name in every account: the caches must keep their facts apart.
const functionName = uniqueName("fun-orders");
const ordersGroup = `/orders/${uniqueName("accounts")}`;
const lambdaGroup = `/aws/lambda/${functionName}`;
const SELECTOR = `{log_group=~"${lambdaGroup}|${ordersGroup}"}`;
const groups: SourceGroup[] = [];

/** Creates the three accounts' functions and groups; returns the groups and their labels. */
async function createSources(): Promise<SourceGroup[]> {
  const central = await accountClients(TEST_ACCOUNT, TEST_REGION);
  const reader = await accountClients("111111111111", "us-east-1");
  const noReader = await accountClients("222222222222", "eu-west-1");
  await createMotoFunction(central.config, {
    name: functionName,
    runtime: "nodejs22.x",
    tags: { team: "central" },
  });
  await createMotoFunction(reader.config, {
    name: functionName,
    runtime: "python3.12",
    tags: { team: "payments" },
  });
  await createMotoFunction(noReader.config, {
    name: functionName,
    runtime: "java21",
    tags: { team: "hidden" },
  });
  const where = (accountId: string, region: string) => ({ accountId, region });
  await createAccountLogGroup(central.logs, lambdaGroup, where(TEST_ACCOUNT, TEST_REGION));
  await createAccountLogGroup(reader.logs, lambdaGroup, where("111111111111", "us-east-1"));
  await createAccountLogGroup(reader.logs, ordersGroup, where("111111111111", "us-east-1"), {
    service: "orders",
  });
  await createAccountLogGroup(noReader.logs, lambdaGroup, where("222222222222", "eu-west-1"), {
    service: "secret",
  });
  const fixed = (accountId: string, region: string) => ({ account: accountId, region });
  return [
    {
      ...where(TEST_ACCOUNT, TEST_REGION),
      logGroup: lambdaGroup,
      client: central.logs,
      absent: ["service"],
      labels: { ...fixed(TEST_ACCOUNT, TEST_REGION), team: "central", runtime: "nodejs" },
    },
    {
      ...where("111111111111", "us-east-1"),
      logGroup: lambdaGroup,
      client: reader.logs,
      absent: ["service"],
      labels: { ...fixed("111111111111", "us-east-1"), team: "payments", runtime: "python" },
    },
    {
      ...where("111111111111", "us-east-1"),
      logGroup: ordersGroup,
      client: reader.logs,
      absent: ["team", "runtime"],
      labels: { ...fixed("111111111111", "us-east-1"), service: "orders" },
    },
    {
      ...where("222222222222", "eu-west-1"),
      logGroup: lambdaGroup,
      client: noReader.logs,
      absent: ["team", "runtime", "service"],
      labels: fixed("222222222222", "eu-west-1"),
    },
  ];
}

/** Puts `count` events labelled `phase` into every group; returns them by group, as FilterLogEvents shows them. */
async function putPhase(phase: string, count: number): Promise<Map<SourceGroup, LogEvent[]>> {
  const now = Date.now();
  const byGroup = new Map<SourceGroup, LogEvent[]>();
  for (const group of groups) {
    const tag = `${phase}-${group.accountId}`;
    await putEvents(group.logGroup, spreadEvents(tag, now - 10 * 60_000, now - 60_000, count), {
      client: group.client,
      account: group.accountId,
    });
    const all = await readGroup(group.logGroup, undefined, undefined, {
      client: group.client,
      account: group.accountId,
    });
    byGroup.set(
      group,
      all.filter((event) => event.message.startsWith(`${tag} `)),
    );
  }
  return byGroup;
}

/** Writes the phase's events into the central stream as each source's destination would. */
async function sendThroughDestinations(
  stream: CentralStream,
  events: Map<SourceGroup, LogEvent[]>,
): Promise<void> {
  for (const [group, groupEvents] of events) {
    const filterName = `loki-shipper-${group.region}`;
    await stream.put(
      destinationPayloads({ owner: group.accountId, logGroup: group.logGroup, filterName }, groupEvents),
    );
  }
}

/** The shipper's account access as in Lambda, with 222222222222 refusing sts:AssumeRole. */
function withSourceAccounts(config: ShipperConfig, deps: ShipperDeps): ShipperDeps {
  const sts = stsAssumeRole(TEST_REGION, awsClientConfig());
  const assumeRole: SourceAccountsOptions["assumeRole"] = async (roleArn, session) => {
    // Injected: moto would hand out credentials for a role that does not exist.
    if (roleArn.includes(":222222222222:"))
      throw Object.assign(new Error(`Not authorized to perform sts:AssumeRole on ${roleArn}`), {
        name: "AccessDenied",
      });
    return sts(roleArn, session);
  };
  const sourceAccounts = shipperSourceAccounts({
    invokedFunctionArn: SHIPPER_ARN,
    config,
    ownClients: { logs: deps.logs, lambda: deps.lambda },
    logger: deps.logger,
    metrics: deps.metrics,
    clientConfig: { endpoint: awsClientConfig().endpoint },
    assumeRole,
  });
  return { ...deps, sourceAccounts };
}

/** Every group's entries in Loki are its events, once, with its own account's labels. */
async function expectInLokiOnce(expected: Map<SourceGroup, LogEvent[]>): Promise<void> {
  const found = await lokiEntries(bed.loki, SELECTOR, Date.now() - HOUR, Date.now() + 60_000);
  for (const [group, events] of expected) {
    const mine = found.filter(
      (entry: LokiEntry) =>
        entry.labels.account === group.accountId && entry.labels.log_group === group.logGroup,
    );
    expect({ group: `${group.accountId} ${group.logGroup}`, keys: entryKeys(mine) }).toEqual({
      group: `${group.accountId} ${group.logGroup}`,
      keys: expectedEntries(events),
    });
    for (const entry of mine) {
      expect(entry.labels).toMatchObject(group.labels);
      for (const name of group.absent) expect(entry.labels).not.toHaveProperty(name);
    }
  }
  expect(found).toHaveLength([...expected.values()].reduce((sum, events) => sum + events.length, 0));
}

function noReaderReports(addMetric: MockInstance<Metrics["addMetric"]>): number {
  return addMetric.mock.calls.filter(([name]) => name === SHIPPER_METRIC.sourceAccountsWithoutReader).length;
}

function merge(...phases: Map<SourceGroup, LogEvent[]>[]): Map<SourceGroup, LogEvent[]> {
  return new Map(groups.map((group) => [group, phases.flatMap((phase) => phase.get(group) ?? [])]));
}

describe("a central Kinesis stream with records from three accounts", () => {
  let bucket: string;
  let config: ShipperConfig;
  let deps: ShipperDeps;
  let warn: MockInstance<Logger["warn"]>;
  let addMetric: MockInstance<Metrics["addMetric"]>;
  const stream = new CentralStream(uniqueName("central"));
  let live: Map<SourceGroup, LogEvent[]>;

  beforeAll(async () => {
    groups.push(...(await createSources()));
    await stream.create();
    bucket = await createTestBucket();
    config = shipperConfig({
      ...shipperEnv({ bucket, lokiUrl: bed.loki.url, tenant: bed.loki.tenant }),
      SOURCE_READER_ROLE_NAME: READER_ROLE,
    });
    deps = withSourceAccounts(config, shipperDeps(config));
    warn = vi.spyOn(deps.logger, "warn");
    addMetric = vi.spyOn(deps.metrics, "addMetric");
  });

  it("ships every event once with its own account's labels, also when Lambda delivers the batch again", async () => {
    live = await putPhase("live", 12);
    await sendThroughDestinations(stream, live);
    const batch = await stream.nextBatch();
    expect(batch.Records).toHaveLength(8); // 4 groups, 2 log streams each

    expect(await shipKinesisEvent(batch, lambdaContext(), config, deps)).toEqual({ batchItemFailures: [] });
    // A forced redelivery of the whole batch (Lambda retries from a failed record on).
    expect(await shipKinesisEvent(batch, lambdaContext(), config, deps)).toEqual({ batchItemFailures: [] });

    await expectInLokiOnce(live);
    const withoutReader = warn.mock.calls.filter(([message]) =>
      String(message).startsWith("source account without a reader role"),
    );
    expect(withoutReader.map(([, context]) => (context as { accountId: string }).accountId)).toEqual([
      "222222222222",
    ]);
    expect(noReaderReports(addMetric)).toBe(1);
  });

  it("keeps what comes while Loki is down in spill/, and the replay leaves every event in Loki once", async () => {
    const reportsBefore = noReaderReports(addMetric);
    const outage = await putPhase("outage", 8);
    await sendThroughDestinations(stream, outage);
    const batch = await stream.nextBatch();

    await bed.loki.stop();
    try {
      expect(await shipKinesisEvent(batch, lambdaContext(), config, deps)).toEqual({ batchItemFailures: [] });
      expect(await shipKinesisEvent(batch, lambdaContext(), config, deps)).toEqual({ batchItemFailures: [] });
      expect((await listKeys(bucket, "spill/")).length).toBeGreaterThan(0);
    } finally {
      await bed.loki.restart();
    }
    const replay = await runReplayLocally({ source: "spill" }, { logs, s3, bucket, env: lokiEnv(bed.loki) });

    expect(replay.status).toBe("succeeded");
    expect(await listKeys(bucket, "spill/")).toEqual([]);
    await expectInLokiOnce(merge(live, outage));
    // Said once per container, however many batches come from the account.
    expect(noReaderReports(addMetric)).toBe(reportsBefore);
  });
});

describe("records that fail", () => {
  beforeAll(async () => {
    if (groups.length === 0) groups.push(...(await createSources()));
  });

  it("reports a record neither in Loki nor in S3 by its sequence number, and not the others", async () => {
    const stream = new CentralStream(uniqueName("central-s3"));
    await stream.create();
    // A real fault from moto: the bucket does not exist, so nothing can be kept in S3.
    const config = shipperConfig({
      ...shipperEnv({ bucket: uniqueName("no-such-bucket"), lokiUrl: bed.loki.url, tenant: bed.loki.tenant }),
      SOURCE_READER_ROLE_NAME: READER_ROLE,
    });
    const deps = withSourceAccounts(config, shipperDeps(config));
    const orders = groups.find((group) => group.logGroup === ordersGroup) as SourceGroup;
    const owner = {
      owner: orders.accountId,
      logGroup: orders.logGroup,
      filterName: "loki-shipper-us-east-1",
    };
    const recent = (text: string): LogEvent => ({
      id: `${Date.now()}${text}`,
      timestamp: Date.now() - 1000,
      message: text,
      logStream: "a",
    });
    // Older than Loki's reject_old_samples_max_age (1 week): refused, and then kept in rejected/, which fails.
    const tooOld: LogEvent = {
      id: "1",
      timestamp: Date.now() - 8 * 24 * HOUR,
      message: "a week old",
      logStream: "b",
    };
    await stream.put(destinationPayloads(owner, [recent("first")]));
    await stream.put(destinationPayloads(owner, [tooOld]));
    await stream.put(destinationPayloads(owner, [recent("last")]));
    const batch = await stream.nextBatch();

    const answer = await shipKinesisEvent(batch, lambdaContext(5_000), config, deps);

    expect(answer).toEqual({
      batchItemFailures: [{ itemIdentifier: batch.Records[1]?.kinesis.sequenceNumber }],
    });
    const stored = await lokiEntries(
      bed.loki,
      `{log_group="${ordersGroup}"}`,
      Date.now() - HOUR,
      Date.now() + 60_000,
    );
    expect(stored.map((entry) => entry.line)).toEqual(expect.arrayContaining(["first", "last"]));
  });

  it("with tenant routing, fails the records of the account without a reader role and ships the others", async () => {
    const stream = new CentralStream(uniqueName("central-tenants"));
    await stream.create();
    const bucket = await createTestBucket();
    const config = shipperConfig({
      ...shipperEnv({ bucket, lokiUrl: bed.loki.url, tenant: bed.loki.tenant }),
      SOURCE_READER_ROLE_NAME: READER_ROLE,
      LABEL_TENANT_TAG: "loki-tenant",
      LOKI_TENANTS_ALLOWED: bed.loki.tenant,
    });
    const deps = withSourceAccounts(config, shipperDeps(config));
    const events = await putPhase(uniqueName("routing"), 4);
    await sendThroughDestinations(stream, events);
    // A malformed record and a CONTROL_MESSAGE in the same batch are no failures.
    await stream.put([Buffer.from("not gzip"), gzipSync(JSON.stringify(controlMessage()))]);
    const batch: KinesisStreamEvent = await stream.nextBatch();

    const answer = await shipKinesisEvent(batch, lambdaContext(), config, deps);

    const fromNoReader = batch.Records.filter(
      (record) => ownerOf(record.kinesis.data) === "222222222222",
    ).map((record) => record.kinesis.sequenceNumber);
    expect(fromNoReader).toHaveLength(2);
    expect(answer.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual(
      fromNoReader.sort(),
    );
    expect(await readChunks(bucket, chunkPrefix("malformed", "unknown"))).toHaveLength(1);
    const others = merge(events);
    others.delete(groups.find((group) => group.accountId === "222222222222") as SourceGroup);
    const found = await lokiEntries(bed.loki, SELECTOR, Date.now() - HOUR, Date.now() + 60_000);
    for (const [group, groupEvents] of others) {
      const mine = found.filter(
        (entry) => entry.labels.account === group.accountId && entry.labels.log_group === group.logGroup,
      );
      expect(entryKeys(mine)).toEqual(expect.arrayContaining(expectedEntries(groupEvents)));
    }
  });
});

/** The `owner` of a record's payload; undefined for one that is not a gzip'd JSON payload. */
function ownerOf(data: string): string | undefined {
  try {
    return (JSON.parse(gunzipSync(Buffer.from(data, "base64")).toString()) as { owner?: string }).owner;
  } catch {
    return undefined;
  }
}
