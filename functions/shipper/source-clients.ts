import type { Logger } from "@aws-lambda-powertools/logger";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import {
  type AccountClients,
  SourceAccounts,
  type SourceAccountsOptions,
  stsAssumeRole,
} from "../core/accounts/source-accounts.ts";
import { lambdaClientOnFirstUse } from "../core/labels/function-lookup.ts";
import { SHIPPER_METRIC } from "../core/metric-names.ts";
import type { ShipperConfig } from "./ship-subscription.ts";

/**
 * The live shipper's way into the accounts its payloads come from: its own clients in its own
 * account and region, clients with its own credentials in its account's other regions, and the
 * source account's reader role (SOURCE_READER_ROLE_NAME) elsewhere. STS and every further client
 * load on first use, so a shipper that only sees its own account starts as fast as before.
 */
export interface ShipperSourceAccountsOptions {
  /** The function's ARN (`context.invokedFunctionArn`): its partition and home account. */
  invokedFunctionArn: string;
  config: ShipperConfig;
  /** The clients the shipper made at cold start, for its own account and region. */
  ownClients: AccountClients;
  logger: Logger;
  metrics: Metrics;
  /** Settings every further client gets (an endpoint in tests). */
  clientConfig?: { endpoint?: string };
  /** sts:AssumeRole; default: through an STS client loaded on first use. */
  assumeRole?: SourceAccountsOptions["assumeRole"];
}

export function shipperSourceAccounts(options: ShipperSourceAccountsOptions): SourceAccounts {
  const { config, ownClients, logger, metrics, clientConfig = {} } = options;
  const [, partition = "aws", , , homeAccountId = ""] = options.invokedFunctionArn.split(":");
  return new SourceAccounts({
    homeAccountId,
    readerRoleName: config.sourceReaderRoleName,
    partition,
    createClients: (region, credentials) =>
      !credentials && region === config.region
        ? ownClients
        : accountClients(region, credentials, clientConfig),
    assumeRole: options.assumeRole ?? stsAssumeRole(config.region, clientConfig),
    onNoReaderRole: (accountId, reason) => {
      logger.warn(
        "source account without a reader role: its events ship with the account, region and log group labels only, without tags or function labels; create the role in that account (SOURCE_READER_ROLE_NAME), and the labels follow within 15 minutes",
        { accountId, reason },
      );
      metrics.addMetric(SHIPPER_METRIC.sourceAccountsWithoutReader, MetricUnit.Count, 1);
    },
  });
}

function accountClients(
  region: string,
  credentials: AwsCredentialIdentityProvider | undefined,
  clientConfig: { endpoint?: string },
): AccountClients {
  const config = { ...clientConfig, region, ...(credentials ? { credentials } : {}) };
  return {
    logs: new CloudWatchLogsClient(config),
    lambda: lambdaClientOnFirstUse(config),
  };
}
