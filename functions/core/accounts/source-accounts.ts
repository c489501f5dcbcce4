import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";

/**
 * The AWS clients that read a source account's log groups and functions: with the functions' own
 * role in their home account, and through the source account's reader role in every other one.
 * Credentials and clients are cached per account (and region) for the warm container; an account
 * whose reader role cannot be assumed is remembered for a while, so that a batch from it costs no
 * sts:AssumeRole call, and reported once.
 */

/** The clients a label look-up or a backfill export needs in one account and region. */
export interface AccountClients {
  logs: CloudWatchLogsClient;
  lambda: LambdaClient;
}

export type SourceAccess =
  | { kind: "readable"; clients: AccountClients }
  /** No reader role to assume: the account's events ship with the labels known without it. */
  | { kind: "no-reader-role"; reason: string };

export interface SourceAccountsOptions {
  /** The account the functions run in: read with their own credentials. */
  homeAccountId: string;
  /** The reader role's name in each source account; without one, other accounts are not read. */
  readerRoleName: string | undefined;
  partition?: string;
  /** Clients for a region; credentials absent: the functions' own. */
  createClients: (region: string, credentials?: AwsCredentialIdentityProvider) => AccountClients;
  /** sts:AssumeRole, returning credentials with their expiry. */
  assumeRole: (roleArn: string, sessionName: string) => Promise<AwsCredentialIdentity>;
  /** Called once per account (per container) whose reader role cannot be assumed. */
  onNoReaderRole?: (accountId: string, reason: string) => void;
  now?: () => number;
  /** How long an account without a reader role is remembered before asking STS again. */
  noReaderRetryMs?: number;
}

/** Errors that mean "this role is not there for us", as opposed to a passing STS failure. */
const REFUSED = new Set(["AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "NoSuchEntity"]);

/** Credentials are renewed this long before they expire. */
const RENEW_BEFORE_MS = 5 * 60_000;

export class SourceAccounts {
  readonly #options: SourceAccountsOptions;
  readonly #now: () => number;
  readonly #clients = new Map<string, AccountClients>();
  readonly #credentials = new Map<string, Promise<AwsCredentialIdentity>>();
  readonly #refused = new Map<string, { reason: string; until: number }>();
  readonly #reported = new Set<string>();

  constructor(options: SourceAccountsOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The reader role's ARN in an account. */
  readerRoleArn(accountId: string): string | undefined {
    const { readerRoleName, partition = "aws" } = this.#options;
    return readerRoleName ? `arn:${partition}:iam::${accountId}:role/${readerRoleName}` : undefined;
  }

  /**
   * The clients for an account and region, or why there are none. Rejects only on a passing STS
   * failure (throttling, network): the caller treats it as a failed look-up, as today.
   */
  async access(accountId: string, region: string): Promise<SourceAccess> {
    const key = `${accountId}/${region}`;
    if (accountId === this.#options.homeAccountId)
      return { kind: "readable", clients: this.#cached(key, region) };
    const roleArn = this.readerRoleArn(accountId);
    if (!roleArn)
      return this.#noReader(accountId, "no reader role name is configured (SOURCE_READER_ROLE_NAME)");
    const refused = this.#refused.get(accountId);
    if (refused && refused.until > this.#now()) return { kind: "no-reader-role", reason: refused.reason };
    try {
      await this.#credentialsOf(accountId, roleArn);
    } catch (error) {
      const name = (error as { name?: string }).name ?? "";
      if (!REFUSED.has(name)) throw error;
      const reason = `cannot assume ${roleArn}: ${name}: ${(error as Error).message}`;
      this.#refused.set(accountId, {
        reason,
        until: this.#now() + (this.#options.noReaderRetryMs ?? 15 * 60_000),
      });
      return this.#noReader(accountId, reason);
    }
    this.#refused.delete(accountId);
    return {
      kind: "readable",
      clients: this.#cached(key, region, () => this.#credentialsOf(accountId, roleArn)),
    };
  }

  #cached(key: string, region: string, credentials?: AwsCredentialIdentityProvider): AccountClients {
    let clients = this.#clients.get(key);
    if (!clients) {
      clients = this.#options.createClients(region, credentials);
      this.#clients.set(key, clients);
    }
    return clients;
  }

  /** The account's credentials, assumed once and renewed shortly before they expire. */
  #credentialsOf(accountId: string, roleArn: string): Promise<AwsCredentialIdentity> {
    const current = this.#credentials.get(accountId);
    if (current) {
      return current.then((credentials) =>
        credentials.expiration && credentials.expiration.getTime() - RENEW_BEFORE_MS <= this.#now()
          ? this.#assume(accountId, roleArn)
          : credentials,
      );
    }
    return this.#assume(accountId, roleArn);
  }

  #assume(accountId: string, roleArn: string): Promise<AwsCredentialIdentity> {
    const pending = this.#options.assumeRole(roleArn, "loki-shipper-reader");
    this.#credentials.set(accountId, pending);
    pending.catch(() => {
      if (this.#credentials.get(accountId) === pending) this.#credentials.delete(accountId);
    });
    return pending;
  }

  #noReader(accountId: string, reason: string): SourceAccess {
    if (!this.#reported.has(accountId)) {
      this.#reported.add(accountId);
      this.#options.onNoReaderRole?.(accountId, reason);
    }
    return { kind: "no-reader-role", reason };
  }
}

/**
 * sts:AssumeRole through a client loaded on first use (only central setups with source accounts
 * need it). `clientConfig` adds client settings (an endpoint, the caller's credentials).
 */
export function stsAssumeRole(
  region?: string,
  clientConfig: import("@aws-sdk/client-sts").STSClientConfig = {},
): SourceAccountsOptions["assumeRole"] {
  let sts: Promise<import("@aws-sdk/client-sts").STSClient> | undefined;
  return async (roleArn, sessionName) => {
    const { STSClient, AssumeRoleCommand } = await import("@aws-sdk/client-sts");
    sts ??= Promise.resolve(new STSClient({ ...clientConfig, ...(region ? { region } : {}) }));
    const { Credentials: credentials } = await (await sts).send(
      new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName, DurationSeconds: 3600 }),
    );
    if (!credentials?.AccessKeyId || !credentials.SecretAccessKey)
      throw new Error(`sts:AssumeRole returned no credentials for ${roleArn}`);
    return {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      ...(credentials.SessionToken ? { sessionToken: credentials.SessionToken } : {}),
      ...(credentials.Expiration ? { expiration: credentials.Expiration } : {}),
    };
  };
}
