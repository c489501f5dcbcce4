import { afterEach, describe, expect, it, vi } from "vitest";
import { dataMessage, realisticEvents, subscriptionEvent } from "../fixtures/subscription.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import { createTaggedLogGroup } from "../helpers/log-groups.ts";
import { lokiEntries } from "../helpers/loki.ts";
import { chunkPrefix, chunkRecords } from "../helpers/s3.ts";
import { lambdaContext } from "../helpers/shipper.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/** The Lambda entry file itself: configuration at cold start, then one invocation. */
const bed = useTestBed();
/** The function's own ARN, as Lambda's context gives it: its account is the shipper's home account. */
const SHIPPER_ARN = `arn:aws:lambda:${TEST_REGION}:${TEST_ACCOUNT}:function:shipper`;

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

function stubAwsEnv(): void {
  // The handler builds its SDK clients from the environment, as in Lambda; point them at moto.
  vi.stubEnv("AWS_ENDPOINT_URL", awsClientConfig().endpoint);
  vi.stubEnv("AWS_REGION", TEST_REGION);
  vi.stubEnv("AWS_ACCESS_KEY_ID", "testing");
  vi.stubEnv("AWS_SECRET_ACCESS_KEY", "testing");
  vi.stubEnv("POWERTOOLS_LOG_LEVEL", "SILENT");
  vi.stubEnv("POWERTOOLS_METRICS_DISABLED", "true");
}

describe("functions/shipper.ts", () => {
  it("fails at cold start with one line per configuration mistake", async () => {
    stubAwsEnv();
    vi.stubEnv("LOKI_URL", "not a url");
    vi.stubEnv("LABEL_LOG_STREAM", "sometimes");
    vi.stubEnv("BUCKET_NAME", "");

    await expect(import("../../functions/shipper.ts")).rejects.toThrow(
      /Invalid configuration:\n- BUCKET_NAME: required.*\n- LOKI_URL: expected an http\(s\) URL.*\n- LABEL_LOG_STREAM: expected true or false \(got "sometimes"\)/,
    );
  });

  it("ships a subscription payload with the log group's tags", async () => {
    const tenant = uniqueName("handler");
    const logGroup = await createTaggedLogGroup("fun-handler", { runtime: "python", name: "fun-handler" });
    stubAwsEnv();
    vi.stubEnv("BUCKET_NAME", bed.bucket);
    vi.stubEnv("LOKI_URL", bed.loki.url);
    vi.stubEnv("LOKI_TENANT", tenant);
    const events = realisticEvents(20, Date.now() - 5_000);
    const { handler } = await import("../../functions/shipper.ts");

    const result = await handler(subscriptionEvent(dataMessage({ logGroup, events })), {
      ...lambdaContext(),
      functionName: "shipper",
      invokedFunctionArn: SHIPPER_ARN,
      awsRequestId: "req-1",
    } as unknown as Parameters<typeof handler>[1]);

    expect(result).toMatchObject({ outcome: "delivered", report: { pushed: 20, spilled: 0 } });
    const stored = await lokiEntries(
      { url: bed.loki.url, tenant: tenant },
      `{runtime="python", name=~"fun.*"}`,
      Date.now() - 60_000,
      Date.now() + 1000,
    );
    expect(stored.map((entry) => entry.line).sort()).toEqual(events.map((event) => event.message).sort());
  });

  it("keeps the batch in S3 when Loki is down, through the S3 client it creates on first use", async () => {
    const logGroup = await createTaggedLogGroup("fun-down", { runtime: "nodejs" });
    stubAwsEnv();
    vi.stubEnv("BUCKET_NAME", bed.bucket);
    vi.stubEnv("LOKI_URL", bed.loki.url);
    vi.stubEnv("LOKI_TENANT", uniqueName("handler-down"));
    const events = realisticEvents(5, Date.now() - 5_000);
    const { handler } = await import("../../functions/shipper.ts");
    await bed.loki.stop();
    try {
      const result = await handler(subscriptionEvent(dataMessage({ logGroup, events })), {
        // Little time left beyond the 5 s kept for S3: the retries give up early and spill.
        ...lambdaContext(6_000),
        functionName: "shipper",
        invokedFunctionArn: SHIPPER_ARN,
        awsRequestId: "req-2",
      } as unknown as Parameters<typeof handler>[1]);

      expect(result).toMatchObject({ outcome: "delivered", report: { pushed: 0, spilled: 5 } });
      const kept = await chunkRecords(bed.bucket, chunkPrefix("spill", logGroup));
      expect(kept.map((record) => record.message).sort()).toEqual(
        events.map((event) => event.message).sort(),
      );
    } finally {
      await bed.loki.restart();
    }
  });
});
