import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { S3Client } from "@aws-sdk/client-s3";
import type {
  CloudWatchLogsEvent,
  Context,
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
} from "aws-lambda";
import type { SourceAccounts } from "./core/accounts/source-accounts.ts";
import { deferredClient } from "./core/deferred-client.ts";
import { GroupMetrics } from "./core/delivery/delivery-metrics.ts";
import { lambdaClientOnFirstUse } from "./core/labels/function-lookup.ts";
import { createLokiPushClient } from "./core/loki/loki-target.ts";
import { isKinesisEvent, shipKinesisEvent } from "./shipper/kinesis.ts";
import { createObservability } from "./shipper/observability.ts";
import {
  parseShipperConfig,
  type ShipperDeps,
  type ShipResult,
  shipSubscriptionEvent,
} from "./shipper/ship-subscription.ts";
import { shipperSourceAccounts } from "./shipper/source-clients.ts";

/**
 * Live shipper: a CloudWatch Logs subscription filter invokes it with a batch of events of one
 * log group, or a Kinesis event source mapping with records from many accounts' log groups; it
 * labels them with the group's tags (and its function's), read in the group's own account, and
 * pushes them to Loki, keeping in S3 what Loki does not take. Configuration is validated at cold
 * start (see ship-subscription.ts).
 */
const config = parseShipperConfig(process.env);
const { logger, metrics, serviceName } = createObservability();
// Every batch needs its log group's tags; S3 (what Loki does not take) and Lambda (the function
// behind a log group) load on first use, to keep them out of the cold start.
const logs = new CloudWatchLogsClient({});
const s3 = deferredClient<S3Client>(async () => new (await import("@aws-sdk/client-s3")).S3Client({}));
const lambda = lambdaClientOnFirstUse();
// Made on the first invocation, whose context names the function's own account.
let sourceAccounts: SourceAccounts | undefined;

export async function handler(
  event: CloudWatchLogsEvent | KinesisStreamEvent,
  context: Context,
): Promise<ShipResult | KinesisStreamBatchResponse> {
  logger.addContext(context);
  sourceAccounts ??= shipperSourceAccounts({
    invokedFunctionArn: context.invokedFunctionArn,
    config,
    ownClients: { logs, lambda },
    logger,
    metrics,
  });
  const deps: ShipperDeps = {
    s3,
    logs,
    lambda,
    sourceAccounts,
    loki: () => createLokiPushClient(config.loki),
    logger,
    metrics,
    groupMetrics: (logGroup) => new GroupMetrics(logGroup, "live", serviceName),
  };
  try {
    if (isKinesisEvent(event)) return await shipKinesisEvent(event, context, config, deps);
    return await shipSubscriptionEvent(event, context, config, deps);
  } finally {
    metrics.publishStoredMetrics();
  }
}
