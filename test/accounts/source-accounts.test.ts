import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  DescribeLogGroupsCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import { describe, expect, it } from "vitest";
import {
  type AccountClients,
  SourceAccounts,
  type SourceAccountsOptions,
  stsAssumeRole,
} from "../../functions/core/accounts/source-accounts.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";

/**
 * SourceAccounts against moto's STS: moto's AssumeRole hands out credentials of the role's account
 * (and moto then serves that account to them), but it does not check that the role exists or
 * trusts the caller. A refusal is therefore an injected `assumeRole` that answers as STS does.
 */
const SOURCE = "111111111111";
const ROLE = "loki-shipper-reader";

interface Made {
  region: string;
  credentials?: AwsCredentialIdentityProvider;
}

/** SourceAccounts whose clients are real moto clients, recording what it made. */
function sourceAccounts(overrides: Partial<SourceAccountsOptions> = {}) {
  const made: Made[] = [];
  const reports: [string, string][] = [];
  const { endpoint, credentials } = awsClientConfig();
  const accounts = new SourceAccounts({
    homeAccountId: TEST_ACCOUNT,
    readerRoleName: ROLE,
    createClients: (region, assumed): AccountClients => {
      made.push({ region, ...(assumed ? { credentials: assumed } : {}) });
      return {
        logs: new CloudWatchLogsClient({ endpoint, region, credentials: assumed ?? credentials }),
        lambda: {} as LambdaClient,
      };
    },
    assumeRole: stsAssumeRole(TEST_REGION, { endpoint, credentials }),
    onNoReaderRole: (accountId, reason) => reports.push([accountId, reason]),
    ...overrides,
  });
  return { accounts, made, reports };
}

function refusingAssumeRole(calls: string[]): SourceAccountsOptions["assumeRole"] {
  return async (roleArn) => {
    calls.push(roleArn);
    throw Object.assign(
      new Error(`User is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`),
      {
        name: "AccessDenied",
      },
    );
  };
}

async function readableClients(accounts: SourceAccounts, accountId: string, region: string) {
  const access = await accounts.access(accountId, region);
  if (access.kind !== "readable") throw new Error(`expected readable, got ${access.reason}`);
  return access.clients;
}

describe("SourceAccounts", () => {
  it("reads a source account through its reader role, with credentials moto serves that account to", async () => {
    // Given a log group that exists only in the source account,
    const { accounts, made } = sourceAccounts();
    const clients = await readableClients(accounts, SOURCE, TEST_REGION);
    const group = `/accounts/${uniqueName("source-only")}`;
    await clients.logs.send(new CreateLogGroupCommand({ logGroupName: group }));

    // Then the source account's clients see it and the home account's do not,
    const inSource = await clients.logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: group }));
    const home = await readableClients(accounts, TEST_ACCOUNT, TEST_REGION);
    const inHome = await home.logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: group }));
    expect(inSource.logGroups?.map((logGroup) => logGroup.arn)).toEqual([
      `arn:aws:logs:${TEST_REGION}:${SOURCE}:log-group:${group}:*`,
    ]);
    expect(inHome.logGroups).toEqual([]);
    // and the home account is read with the function's own credentials.
    expect(made.map(({ region, credentials }) => ({ region, assumed: Boolean(credentials) }))).toEqual([
      { region: TEST_REGION, assumed: true },
      { region: TEST_REGION, assumed: false },
    ]);
  });

  it("assumes the role once per account and makes clients once per account and region", async () => {
    const roleArns: string[] = [];
    const sts = stsAssumeRole(TEST_REGION, awsClientConfig());
    const { accounts, made } = sourceAccounts({
      assumeRole: (roleArn, session) => {
        roleArns.push(roleArn);
        return sts(roleArn, session);
      },
    });

    const first = await readableClients(accounts, SOURCE, TEST_REGION);
    const again = await readableClients(accounts, SOURCE, TEST_REGION);
    await readableClients(accounts, SOURCE, "us-east-1");
    await readableClients(accounts, TEST_ACCOUNT, TEST_REGION);

    expect(again).toBe(first);
    expect(made.map((entry) => entry.region)).toEqual([TEST_REGION, "us-east-1", TEST_REGION]);
    expect(roleArns).toEqual([`arn:aws:iam::${SOURCE}:role/${ROLE}`]);
  });

  it("renews the credentials shortly before they expire", async () => {
    let clock = Date.now();
    const expirations: Date[] = [];
    const { accounts, made } = sourceAccounts({
      now: () => clock,
      assumeRole: async (): Promise<AwsCredentialIdentity> => {
        const expiration = new Date(clock + 60 * 60_000);
        expirations.push(expiration);
        return { accessKeyId: `key-${expirations.length}`, secretAccessKey: "secret", expiration };
      },
    });
    await readableClients(accounts, SOURCE, TEST_REGION);
    const provider = made[0]?.credentials as AwsCredentialIdentityProvider;

    clock += 50 * 60_000; // 10 minutes left: still used
    expect((await provider()).accessKeyId).toBe("key-1");
    clock += 6 * 60_000; // 4 minutes left: renewed
    expect((await provider()).accessKeyId).toBe("key-2");
    expect(expirations).toHaveLength(2);
  });

  it("reports an account whose role cannot be assumed once, and asks STS again only after a while", async () => {
    let clock = Date.now();
    const calls: string[] = [];
    const { accounts, reports } = sourceAccounts({
      now: () => clock,
      noReaderRetryMs: 60_000,
      assumeRole: refusingAssumeRole(calls),
    });

    const first = await accounts.access("222222222222", TEST_REGION);
    const second = await accounts.access("222222222222", "us-east-1");
    clock += 61_000;
    const later = await accounts.access("222222222222", TEST_REGION);

    expect(first).toEqual({
      kind: "no-reader-role",
      reason: expect.stringMatching(
        /^cannot assume arn:aws:iam::222222222222:role\/loki-shipper-reader: AccessDenied: /,
      ),
    });
    expect(second.kind).toBe("no-reader-role");
    expect(later.kind).toBe("no-reader-role");
    expect(calls).toHaveLength(2);
    expect(reports.map(([accountId]) => accountId)).toEqual(["222222222222"]);
  });

  it("reads no other account when no reader role name is configured, and says why", async () => {
    const calls: string[] = [];
    const { accounts, reports } = sourceAccounts({
      readerRoleName: undefined,
      assumeRole: refusingAssumeRole(calls),
    });

    expect(await accounts.access(SOURCE, TEST_REGION)).toEqual({
      kind: "no-reader-role",
      reason: "no reader role name is configured (SOURCE_READER_ROLE_NAME)",
    });
    expect((await accounts.access(TEST_ACCOUNT, TEST_REGION)).kind).toBe("readable");
    expect(calls).toEqual([]);
    expect(reports).toHaveLength(1);
  });

  it("rejects on a passing STS failure without remembering the account as one without a role", async () => {
    let throttled = true;
    const sts = stsAssumeRole(TEST_REGION, awsClientConfig());
    const { accounts, reports } = sourceAccounts({
      // Injected fault: moto's STS never throttles.
      assumeRole: async (roleArn, session) => {
        if (throttled) throw Object.assign(new Error("Rate exceeded"), { name: "Throttling" });
        return sts(roleArn, session);
      },
    });

    await expect(accounts.access(SOURCE, TEST_REGION)).rejects.toThrow("Rate exceeded");
    throttled = false;
    expect((await accounts.access(SOURCE, TEST_REGION)).kind).toBe("readable");
    expect(reports).toEqual([]);
  });
});
