import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { describe, expect, it } from "vitest";
import { runBackfillLocally } from "../../cli/local-workflow.ts";
import type { SourceAccountsOptions } from "../../functions/core/accounts/source-accounts.ts";
import { InputError } from "../../functions/core/errors.ts";
import { functionLookupClientsLike } from "../../functions/core/labels/function-lookup.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { groupKeySegment } from "../../functions/core/storage/chunk-format.ts";
import { createAccountAccess } from "../../functions/core/workflow/source-access.ts";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import {
  HOUR,
  logs,
  putEvents,
  RECENT_HISTORY_MS,
  readGroup,
  seedLogGroup,
  spreadEvents,
} from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkRecords, createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { shipLive } from "../helpers/shipper.ts";
import {
  assumeRoleInMoto,
  inSourceAccount,
  READER_ROLE,
  READER_ROLE_ARN,
  SOURCE_ACCOUNT,
  sourceLambda,
  sourceLogs,
} from "../helpers/source-account.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/** Backfills of log groups in a source account (see accounts.ts), through the backfill state machine with the real task code. */
const now = Date.now();
const since = now - RECENT_HISTORY_MS;

const bed = useTestBed();

/** How the workflow reaches the accounts: its own clients at home, the reader role in the source account. */
function accountAccess(assume = assumeRoleInMoto) {
  return createAccountAccess({
    home: { logs, functions: functionLookupClientsLike(logs) },
    homeAccountId: async () => TEST_ACCOUNT,
    readerRoleName: READER_ROLE,
    createClients: (region, credentials) => {
      const config = { ...awsClientConfig(), region, ...(credentials ? { credentials } : {}) };
      return { logs: new CloudWatchLogsClient(config), lambda: new LambdaClient(config) };
    },
    assumeRole: assume,
  });
}

function arnOf(account: string, logGroup: string): string {
  return `arn:aws:logs:${TEST_REGION}:${account}:log-group:${logGroup}:*`;
}

describe("backfill of a log group in a source account", () => {
  it("leaves every event once in Loki with that account's labels, beside the live shipper's newer events of the group", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("source");
    const name = `/aws/lambda/${uniqueName("billing")}`;
    const env = lokiEnv(bed.loki);
    const historyStart = since + 60_000;
    await seedLogGroup(name, { team }, spreadEvents("history", historyStart, now - 20 * 60_000, 2000, 3), {
      in: inSourceAccount,
    });
    // The live shipper ships the group's last 30 minutes (which the backfill reads too) and keeps
    // shipping new events, from subscription payloads whose owner is the source account. It reads
    // the group's tags with the source account's clients, as through the reader role.
    const liveShipped: LogEvent[] = [];
    const ship = (events: LogEvent[]) =>
      shipLive(name, events, env, bucket, { logs: sourceLogs, lambda: sourceLambda }, SOURCE_ACCOUNT);
    let stop = false;
    const live = (async () => {
      const tail = await readGroup(name, now - 30 * 60_000, undefined, inSourceAccount);
      await ship(tail);
      liveShipped.push(...tail);
      for (let round = 0; !stop; round++) {
        const seen = new Set(
          (await readGroup(name, now - HOUR, undefined, inSourceAccount)).map((event) => event.id),
        );
        await putEvents(
          name,
          [{ timestamp: Date.now(), message: `live ${round}`, logStream: "2026/11/25/[$LATEST]live" }],
          inSourceAccount,
        );
        const fresh = (await readGroup(name, now - HOUR, undefined, inSourceAccount)).filter(
          (event) => !seen.has(event.id),
        );
        await ship(fresh);
        liveShipped.push(...fresh);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    const report = await runBackfillLocally(
      {
        logGroupNames: [arnOf(SOURCE_ACCOUNT, name)],
        range: `${new Date(since).toISOString()}..now`,
        requestsPerSecond: 25,
      },
      { logs, s3, bucket, env, accounts: accountAccess() },
    );
    stop = true;
    await live;

    expect(report.status).toBe("succeeded");
    expect(liveShipped.length).toBeGreaterThan(5);
    expect(report.groups).toMatchObject([{ logGroup: name, account: SOURCE_ACCOUNT, region: TEST_REGION }]);
    const everything = await readGroup(name, undefined, undefined, inSourceAccount);
    const inLoki = await lokiEntries(bed.loki, `{team="${team}"}`, historyStart, Date.now() + 60_000);
    expect(entryKeys(inLoki)).toEqual(expectedEntries(everything));
    for (const entry of inLoki)
      expect(entry.labels).toMatchObject({ account: SOURCE_ACCOUNT, region: TEST_REGION });
  });
});

describe("the same log group name in two accounts", () => {
  it("ships both groups' events, each once, each with its own account label, and keeps their chunks apart", async () => {
    const bucket = await createTestBucket();
    const team = uniqueName("twins");
    const name = `/aws/lambda/${uniqueName("fn")}`;
    const home = await seedLogGroup(
      name,
      { team },
      spreadEvents("home", since + 60_000, now - 10 * 60_000, 300, 2),
    );
    const source = await seedLogGroup(
      name,
      { team },
      spreadEvents("source", since + 60_000, now - 10 * 60_000, 400, 2),
      {
        in: inSourceAccount,
      },
    );

    const report = await runBackfillLocally(
      {
        logGroupNames: [name, arnOf(SOURCE_ACCOUNT, name)],
        range: `${new Date(since).toISOString()}..now`,
        requestsPerSecond: 25,
      },
      { logs, s3, bucket, env: lokiEnv(bed.loki), accounts: accountAccess() },
    );

    expect(report.status).toBe("succeeded");
    const byAccount = (account: string) =>
      lokiEntries(bed.loki, `{team="${team}", account="${account}"}`, since, now);
    expect(entryKeys(await byAccount(TEST_ACCOUNT))).toEqual(expectedEntries(home));
    expect(entryKeys(await byAccount(SOURCE_ACCOUNT))).toEqual(expectedEntries(source));
    // By name, then account.
    expect(
      report.groups.map(({ logGroup, account, exported, pushed }) => ({
        logGroup,
        account,
        exported,
        pushed,
      })),
    ).toEqual([
      { logGroup: name, account: SOURCE_ACCOUNT, exported: source.length, pushed: source.length },
      { logGroup: name, account: TEST_ACCOUNT, exported: home.length, pushed: home.length },
    ]);
    for (const [account, events] of [
      [TEST_ACCOUNT, home],
      [SOURCE_ACCOUNT, source],
    ] as const) {
      const segment = groupKeySegment({ logGroup: name, account, region: TEST_REGION });
      const chunks = await chunkRecords(bucket, `runs/${report.runId}/chunks/${segment}/`);
      expect(chunks.map((event) => event.id).sort()).toEqual(events.map((event) => event.id).sort());
      expect(await listKeys(bucket, `runs/${report.runId}/checkpoints/export/${segment}/`)).not.toEqual([]);
    }
  });
});

describe("a source account without a reader role", () => {
  it("fails the plan naming the account and telling the operator to deploy the reader role", async () => {
    const name = `/aws/lambda/${uniqueName("orphan")}`;
    await seedLogGroup(name, {}, spreadEvents("orphan", since, now - 10 * 60_000, 10), {
      in: inSourceAccount,
    });
    // moto lets any role be assumed: the refusal STS gives for a missing role is injected here.
    const refusing: SourceAccountsOptions["assumeRole"] = async (roleArn) => {
      throw Object.assign(
        new Error(`User is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`),
        {
          name: "AccessDenied",
        },
      );
    };

    const run = runBackfillLocally(
      {
        logGroupNames: [arnOf(SOURCE_ACCOUNT, name)],
        range: `${new Date(since).toISOString()}..now`,
        dryRun: true,
      },
      {
        logs,
        s3,
        bucket: await createTestBucket(),
        env: lokiEnv(bed.loki),
        accounts: accountAccess(refusing),
      },
    );

    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(
      `account ${SOURCE_ACCOUNT} (${TEST_REGION}) has no reader role the backfill may assume (cannot assume ${READER_ROLE_ARN}: AccessDenied:`,
    );
    await expect(run).rejects.toThrow(
      `deploy the loki-shipper source stack in account ${SOURCE_ACCOUNT} with its reader role ${READER_ROLE}`,
    );
  });
});
