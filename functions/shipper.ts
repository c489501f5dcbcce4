import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { S3Client } from "@aws-sdk/client-s3";
import type { CloudWatchLogsEvent, Context } from "aws-lambda";
import { deferredClient } from "./core/deferred-client.ts";
import { GroupMetrics } from "./core/delivery/delivery-metrics.ts";
import { createLokiPushClient } from "./core/loki/loki-target.ts";
import { createObservability } from "./shipper/observability.ts";
import { parseShipperConfig, type ShipResult, shipSubscriptionEvent } from "./shipper/ship-subscription.ts";

/**
 * Live shipper: a CloudWatch Logs subscription filter invokes it with a batch of events of one
 * log group; it labels them with the group's tags (and its function's) and pushes them to Loki, keeping in S3 what
 * Loki does not take. Configuration is validated at cold start (see ship-subscription.ts).
 */
const config = parseShipperConfig(process.env);
const { logger, metrics, serviceName } = createObservability();
// Every batch needs its log group's tags; S3 (what Loki does not take) and Lambda (the function
// behind a log group) load on first use, to keep them out of the cold start.
const logs = new CloudWatchLogsClient({});
const s3 = deferredClient<S3Client>(async () => new (await import("@aws-sdk/client-s3")).S3Client({}));
const lambda = deferredClient<LambdaClient>(
  async () => new (await import("@aws-sdk/client-lambda")).LambdaClient({}),
);

export async function handler(event: CloudWatchLogsEvent, context: Context): Promise<ShipResult> {
  logger.addContext(context);
  try {
    return await shipSubscriptionEvent(event, context, config, {
      s3,
      logs,
      lambda,
      loki: () => createLokiPushClient(config.loki),
      logger,
      metrics,
      groupMetrics: (logGroup) => new GroupMetrics(logGroup, "live", serviceName),
    });
  } finally {
    metrics.publishStoredMetrics();
  }
}
