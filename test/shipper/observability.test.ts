import { Metrics } from "@aws-lambda-powertools/metrics";
import { describe, expect, it } from "vitest";
import { recordDelivery } from "../../functions/shipper/observability.ts";

describe("recordDelivery", () => {
  it("turns a delivery report into EMF metrics", () => {
    const metrics = new Metrics({ namespace: "LokiShipper", serviceName: "shipper" });
    recordDelivery(metrics, {
      received: 12,
      pushed: 7,
      dropped: { "rule 2": 2 },
      refused: { too_old: 1 },
      spilled: 3,
      streamLimited: 0,
      alreadyStored: 4,
      retries: 2,
      bytes: 1234,
      requests: 3,
      chunkKeys: [],
    });

    const emf = metrics.serializeMetrics() as unknown as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string; Unit: string }[] }[] };
    };
    expect(emf._aws.CloudWatchMetrics[0]?.Namespace).toBe("LokiShipper");
    expect(emf).toMatchObject({
      EventsIn: 12,
      EventsDropped: 2,
      EventsDropped_rule_2: 2,
      EventsShipped: 7,
      EventsSpilled: 3,
      EventsAlreadyStored: 4,
      EventsRefused: 1,
      EventsRefused_too_old: 1,
      PushRetries: 2,
      PushRequests: 3,
      BytesSent: 1234,
    });
    expect(emf._aws.CloudWatchMetrics[0]?.Metrics).toContainEqual({ Name: "BytesSent", Unit: "Bytes" });
  });
});
