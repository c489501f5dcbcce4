import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import {
  type AccountClients,
  SourceAccounts,
  type SourceAccountsOptions,
  stsAssumeRole,
} from "../accounts/source-accounts.ts";
import { InputError } from "../errors.ts";
import {
  type FunctionLookupClients,
  functionLookupClientsLike,
  lambdaClientOnFirstUse,
} from "../labels/function-lookup.ts";

/**
 * The clients a backfill reads a log group's account and region with: the functions' own in their
 * home account and region, the source account's reader role (SourceAccounts) everywhere else.
 */

/** The reader role's name when SOURCE_READER_ROLE_NAME is not set: the source stack's default. */
export const DEFAULT_READER_ROLE_NAME = "loki-shipper-reader";

export interface LogGroupSource {
  account: string;
  region: string;
}

/** What the plan and the export read one account and region with. */
export interface SourceClients {
  logs: CloudWatchLogsClient;
  /** For the tags and runtime of the functions behind Lambda log groups, in the same account. */
  functions: FunctionLookupClients;
}

export interface AccountAccess {
  /** The functions' own account and region. */
  home(): Promise<LogGroupSource>;
  /** The clients for an account and region; {@link NoReaderRoleError} when its reader role cannot be assumed. */
  clients(source: LogGroupSource): Promise<SourceClients>;
}

/** A source account without a reader role the functions may assume: its groups cannot be read. */
export class NoReaderRoleError extends InputError {}

export interface AccountAccessOptions {
  /** The functions' own clients (home account and region). */
  home: SourceClients;
  /** The home account's id, asked once (sts:GetCallerIdentity by default). */
  homeAccountId: () => Promise<string>;
  readerRoleName: string;
  partition?: string;
  createClients: SourceAccountsOptions["createClients"];
  assumeRole: SourceAccountsOptions["assumeRole"];
}

export function createAccountAccess(options: AccountAccessOptions): AccountAccess {
  let home: Promise<LogGroupSource> | undefined;
  let accounts: Promise<SourceAccounts> | undefined;
  const readHome = () => {
    home ??= Promise.all([options.homeAccountId(), regionOf(options.home.logs)]).then(
      ([account, region]) => ({ account, region }),
    );
    home.catch(() => {
      home = undefined;
    });
    return home;
  };
  const sourceAccounts = () => {
    accounts ??= readHome().then(
      ({ account }) =>
        new SourceAccounts({
          homeAccountId: account,
          readerRoleName: options.readerRoleName,
          ...(options.partition ? { partition: options.partition } : {}),
          createClients: options.createClients,
          assumeRole: options.assumeRole,
        }),
    );
    return accounts;
  };
  return {
    home: readHome,
    clients: async (source) => {
      const own = await readHome();
      if (own.account === source.account && own.region === source.region) return options.home;
      const access = await (await sourceAccounts()).access(source.account, source.region);
      if (access.kind === "readable") return withFunctionClients(access.clients);
      throw new NoReaderRoleError(
        `account ${source.account} (${source.region}) has no reader role the backfill may assume (${access.reason}): deploy the loki-shipper source stack in account ${source.account} with its reader role ${options.readerRoleName}, or leave that account's log groups out of the request`,
      );
    },
  };
}

function withFunctionClients(clients: AccountClients): SourceClients {
  return {
    logs: clients.logs,
    functions: { lambda: clients.lambda, tagging: functionLookupClientsLike(clients.logs).tagging },
  };
}

export async function regionOf(client: { config: { region: unknown } }): Promise<string> {
  const region = client.config.region;
  return typeof region === "function" ? String(await region()) : String(region);
}

/**
 * Account access with the settings (region, credentials, endpoint) of the functions' own
 * CloudWatch Logs client: the Lambda functions' environment, or the CLI's and the tests' moto.
 * The home account is asked of STS once, and only when a request names an account or region.
 * Tests pass their own access (an sts:AssumeRole against the emulator).
 */
export function accountAccessLike(
  logs: CloudWatchLogsClient,
  functions: FunctionLookupClients,
  env: Record<string, string | undefined>,
): AccountAccess {
  const endpoint =
    logs.config.isCustomEndpoint && logs.config.endpoint ? { endpoint: logs.config.endpoint } : {};
  const stsConfig = { region: logs.config.region, credentials: logs.config.credentials, ...endpoint };
  return createAccountAccess({
    home: { logs, functions },
    homeAccountId: async () => {
      const { STSClient, GetCallerIdentityCommand } = await import("@aws-sdk/client-sts");
      const sts = new STSClient(stsConfig);
      const { Account: account } = await sts.send(new GetCallerIdentityCommand({}));
      if (!account) throw new Error("sts:GetCallerIdentity returned no account");
      return account;
    },
    readerRoleName: env.SOURCE_READER_ROLE_NAME || DEFAULT_READER_ROLE_NAME,
    createClients: (region, credentials) => {
      const config = { region, credentials: credentials ?? logs.config.credentials, ...endpoint };
      return { logs: new CloudWatchLogsClient(config), lambda: lambdaClientOnFirstUse(config) };
    },
    // STS with the settings of `logs`: an endpoint given to the CLI (an emulator) is asked too,
    // and its credentials never go to AWS.
    assumeRole: stsAssumeRole(undefined, stsConfig),
  });
}
