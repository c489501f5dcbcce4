import { describe, expect, it } from "vitest";
import { eventNanoseconds } from "../../functions/core/delivery/timestamps.ts";
import { shipSubscriptionEvent } from "../../functions/shipper/ship-subscription.ts";
import {
  dataMessage,
  type FixtureLogEvent,
  lineOfBytes,
  logEvent,
  realisticEvents,
  sizedEvents,
  subscriptionEvent,
} from "../fixtures/subscription.ts";
import { TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import { createTaggedLogGroup } from "../helpers/log-groups.ts";
import { lokiEntries } from "../helpers/loki.ts";
import { readChunks } from "../helpers/s3.ts";
import { lambdaContext, shipperConfig, shipperDeps, shipperEnv } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * The live shipper end to end: subscription payloads -> shipSubscriptionEvent -> Loki test server,
 * with tags read from moto's CloudWatch Logs and spill/rejected chunks written to moto's S3.
 */
const bed = useTestBed();

const envFor = (tenant: string, extra: Record<string, string> = {}) =>
  shipperEnv({ bucket: bed.bucket, lokiUrl: bed.loki.url, tenant }, extra);

function lines(events: { message: string }[]): string[] {
  return events.map((event) => event.message).sort();
}

describe.each(["protobuf", "json"] as const)("shipping realistic payloads (%s)", (format) => {
  it("stores every event exactly, under the tag labels, and keeps the over-long line in rejected/", async () => {
    const tenant = uniqueName("real");
    const logGroup = await createTaggedLogGroup("fun-orders", {
      runtime: "python",
      name: "fun-orders",
      "team-name": "payments",
      "aws:cloudformation:stack-name": "orders-stack",
    });
    const config = shipperConfig(envFor(tenant, { LOKI_PUSH_FORMAT: format }));
    const startMs = Date.now() - 60_000;
    const events: FixtureLogEvent[] = [
      ...realisticEvents(300, startMs),
      logEvent(startMs + 5_000, lineOfBytes(262_145)),
    ];
    const payload = subscriptionEvent(
      dataMessage({ logGroup, logStream: "2026/11/25/[$LATEST]0a1b2c", events }),
    );

    const result = await shipSubscriptionEvent(payload, lambdaContext(), config, shipperDeps(config));

    expect(result.outcome).toBe("delivered");
    if (result.outcome !== "delivered") return;
    expect(result.report).toMatchObject({
      received: 301,
      pushed: 300,
      spilled: 0,
      refused: { line_too_long: 1 },
    });
    const stored = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{runtime="python", region="${TEST_REGION}", name=~"fun.*"}`,
      startMs - 1000,
      Date.now() + 1000,
    );
    const shipped = events.slice(0, 300);
    // Exactly: each event once, at its deterministic nanosecond timestamp, with its line unchanged.
    const expected = new Map(
      shipped.map((event) => [eventNanoseconds(event.timestamp, event.id), event.message]),
    );
    expect(stored).toHaveLength(shipped.length);
    expect(new Map(stored.map((entry) => [entry.ns, entry.line]))).toEqual(expected);
    const labels = stored[0]?.labels ?? {};
    expect(labels).toMatchObject({
      source: "cloudwatch",
      log_group: logGroup,
      account: TEST_ACCOUNT,
      region: TEST_REGION,
      team_name: "payments",
      log_stream: "2026/11/25/[$LATEST]0a1b2c", // structured metadata, merged into the labels by queries
    });
    expect(labels).not.toHaveProperty("aws_cloudformation_stack_name");
    expect(labels.time_shard).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}$/);
    expect(stored.some((entry) => entry.labels.request_id?.match(/^[0-9a-f-]{36}$/))).toBe(true);

    const rejected = await readChunks(bed.bucket, `rejected/${encodeURIComponent(logGroup)}/`);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.chunk.records.map((record) => record.id)).toEqual([events[300]?.id]);
    expect(rejected[0]?.chunk.records[0]?.reason).toMatch(/line too long: 262145 bytes/);
  });
});

describe("a payload of 10,000 events", () => {
  it("is pushed in bounded batches and read back complete", async () => {
    const tenant = uniqueName("big");
    const logGroup = await createTaggedLogGroup("bulk", { runtime: "nodejs" });
    const config = shipperConfig(envFor(tenant, { LOKI_BATCH_MAX_BYTES: "512KB" }));
    const startMs = Date.now() - 120_000;
    const events = sizedEvents(10_000, 200, startMs);

    const result = await shipSubscriptionEvent(
      subscriptionEvent(dataMessage({ logGroup, events })),
      lambdaContext(),
      config,
      shipperDeps(config),
    );

    expect(result.outcome === "delivered" && result.report).toMatchObject({
      received: 10_000,
      pushed: 10_000,
      spilled: 0,
    });
    expect(result.outcome === "delivered" && result.report.requests).toBeGreaterThanOrEqual(4);
    const stored = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{runtime="nodejs"}`,
      startMs - 1,
      Date.now() + 1000,
    );
    expect(stored).toHaveLength(10_000);
    expect(stored.map((entry) => entry.line).sort()).toEqual(lines(events));
  });
});

describe("exactly once", () => {
  it("stores the same payload delivered twice once, and keeps equal lines of two log streams apart", async () => {
    const tenant = uniqueName("dup");
    const logGroup = await createTaggedLogGroup("dup", { runtime: "go" });
    const config = shipperConfig(envFor(tenant));
    const deps = shipperDeps(config);
    const ms = Date.now() - 30_000;
    const first = dataMessage({
      logGroup,
      logStream: "stream-a",
      events: [logEvent(ms, "same text"), logEvent(ms + 1, "other")],
    });
    const second = dataMessage({ logGroup, logStream: "stream-b", events: [logEvent(ms, "same text")] });

    await shipSubscriptionEvent(subscriptionEvent(first), lambdaContext(), config, deps);
    await shipSubscriptionEvent(subscriptionEvent(first), lambdaContext(), config, deps);
    await shipSubscriptionEvent(subscriptionEvent(second), lambdaContext(), config, deps);

    const stored = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{runtime="go"}`,
      ms - 1,
      Date.now() + 1000,
    );
    expect(stored.map((entry) => entry.line).sort()).toEqual(["other", "same text", "same text"]);
    expect(
      stored
        .filter((entry) => entry.line === "same text")
        .map((entry) => entry.labels.log_stream)
        .sort(),
    ).toEqual(["stream-a", "stream-b"]);
  });
});

describe("malformed payloads", () => {
  it.each([
    ["bad base64", { awslogs: { data: "%%% not base64 %%%" } }, "base64"],
    ["bad gzip", { awslogs: { data: Buffer.from("not gzip").toString("base64") } }, "gzip"],
    ["not JSON", subscriptionEvent("this is not json"), "json"],
    ["missing fields", subscriptionEvent({ messageType: "DATA_MESSAGE", logGroup: "/g" }), "shape"],
    ["unknown message type", subscriptionEvent({ messageType: "SURPRISE_MESSAGE" }), "message_type"],
    ["not a subscription event", { Records: [] }, "event"],
  ])("keeps %s in malformed/ with the error and resolves", async (_name, event, stage) => {
    const config = shipperConfig(envFor(uniqueName("bad")));

    const result = await shipSubscriptionEvent(event, lambdaContext(), config, shipperDeps(config));

    expect(result).toMatchObject({ outcome: "malformed", stage });
    if (result.outcome !== "malformed") return;
    expect(result.key).toMatch(/^malformed\//);
    const [kept] = (await readChunks(bed.bucket, result.key)).map((item) => item.chunk);
    expect(kept?.header.reason).toBe(`${stage}: ${result.error}`);
    const raw = (event as { awslogs?: { data?: string } }).awslogs?.data ?? JSON.stringify(event);
    expect(kept?.records[0]?.message).toBe(raw);
  });

  it("ignores a CONTROL_MESSAGE", async () => {
    const config = shipperConfig(envFor(uniqueName("ctl")));
    const result = await shipSubscriptionEvent(
      subscriptionEvent({
        messageType: "CONTROL_MESSAGE",
        owner: "CloudwatchLogs",
        logGroup: "",
        logStream: "",
        subscriptionFilters: [],
        logEvents: [],
      }),
      lambdaContext(),
      config,
      shipperDeps(config),
    );
    expect(result).toEqual({ outcome: "control" });
  });
});
