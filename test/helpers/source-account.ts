import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { type SourceAccountsOptions, stsAssumeRole } from "../../functions/core/accounts/source-accounts.ts";
import { awsClientConfig, TEST_REGION } from "./aws.ts";
import type { GroupAccount } from "./log-groups.ts";

/**
 * A source account in moto. moto serves a role's account to the credentials sts:AssumeRole returns
 * for it, so the reader role `arn:aws:iam::111111111111:role/loki-shipper-reader` gives clients in
 * account 111111111111 (moto does not check that the role exists or trusts anyone).
 */
export const SOURCE_ACCOUNT = "111111111111";
export const READER_ROLE = "loki-shipper-reader";
export const READER_ROLE_ARN = `arn:aws:iam::${SOURCE_ACCOUNT}:role/${READER_ROLE}`;

/** sts:AssumeRole against moto, through the project's own STS call. */
export const assumeRoleInMoto: SourceAccountsOptions["assumeRole"] = stsAssumeRole(
  TEST_REGION,
  awsClientConfig(),
);

const sourceConfig = () => ({
  ...awsClientConfig(),
  credentials: () => assumeRoleInMoto(READER_ROLE_ARN, "test-setup"),
});

/** The source account's own clients, to create its log groups and ship its live traffic. */
export const sourceLogs = new CloudWatchLogsClient(sourceConfig());
export const sourceLambda = new LambdaClient(sourceConfig());
export const inSourceAccount: GroupAccount = { client: sourceLogs, account: SOURCE_ACCOUNT };
