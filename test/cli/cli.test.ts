import { execFile } from "node:child_process";
import { DescribeSubscriptionFiltersCommand } from "@aws-sdk/client-cloudwatch-logs";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsClientConfig, createFunction, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import { HOUR, logs, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import {
  expectedEntries,
  lokiEntries,
  NO_TENANT_LIMITS_REASON,
  noTenantLimits,
  startTestLoki,
  type TestLoki,
} from "../helpers/loki.ts";
import { createTestBucket, s3 } from "../helpers/s3.ts";
import { inSourceAccount, SOURCE_ACCOUNT } from "../helpers/source-account.ts";

/**
 * The CLI as a user runs it: a child process (`node cli/main.ts`), AWS from the environment
 * (pointed at moto), Loki on 127.0.0.1. Checks what it prints and its exit code.
 */
interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

let baseEnv: Record<string, string>;

function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["cli/main.ts", ...args],
      { env: { ...baseEnv, ...env } as NodeJS.ProcessEnv, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A real Loki returns just-pushed entries older than `query_ingesters_within` (3 h) only after a flush. */
describe("loki-shipper CLI", () => {
  let loki: TestLoki;
  let bucket: string;
  let pythonGroup: string;
  let seeded: Awaited<ReturnType<typeof seedLogGroup>>;
  const now = Date.now();

  beforeAll(async () => {
    loki = await startTestLoki();
    bucket = await createTestBucket();
    baseEnv = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      AWS_ENDPOINT_URL: awsClientConfig().endpoint,
      AWS_REGION: TEST_REGION,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      // Never ask the EC2 instance metadata service for credentials from a test.
      AWS_EC2_METADATA_DISABLED: "true",
      LOKI_SHIPPER_BUCKET: bucket,
      POWERTOOLS_LOG_LEVEL: "ERROR",
      // A run with a shifted clock (libfaketime, see README) keeps it in the CLI it starts.
      ...(process.env.FAKETIME
        ? { FAKETIME: process.env.FAKETIME, LD_PRELOAD: process.env.LD_PRELOAD ?? "" }
        : {}),
    };
    pythonGroup = `/aws/lambda/${uniqueName("fun-python")}`;
    seeded = await seedLogGroup(
      pythonGroup,
      { name: "fun-python", runtime: "python", "aws:cloudformation:stack-name": "demo", "team-name": "shop" },
      // Recent history, which a real Loki's queries still show (see RECENT_HISTORY_MS); 80 minutes
      // always cross an hour boundary, so a backfill opens at least two hour streams.
      spreadEvents("cli", now - 110 * 60_000, now - 30 * 60_000, 300),
    );
  });
  afterAll(async () => {
    await loki?.close();
  });

  it("prints help for every command and exits 0", async () => {
    const result = await runCli(["backfill", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("--since <age>");
    expect(result.stdout).toContain("--local");
  });

  it("labels: shows the labels a log group gets and why each tag is kept or dropped", async () => {
    const result = await runCli(["labels", pythonGroup]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/runtime\s+python\s+group tag "runtime"/);
    expect(result.stdout).toMatch(/log_group\s+\/aws\/lambda\/fun-python-\w+\s+fixed/);
    expect(result.stdout).toMatch(/group tag\s+team-name\s+shop\s+yes, as team_name/);
    expect(result.stdout).toMatch(/group tag\s+aws:cloudformation:stack-name\s+demo\s+no\s+/);
    expect(result.stdout).toContain("time_shard");
    expect(result.stdout).toMatch(/Function fun-python-\w+ does not exist \(any more\): no function labels/);
  });

  it("labels: an untagged group of a tagged function gets the function's tags and runtime, and says so", async () => {
    // Given a python3.12 function tagged by its IaC, and its log group untagged (as Lambda creates it)
    const functionName = uniqueName("fun-tagged");
    await createFunction({
      name: functionName,
      runtime: "python3.12",
      tags: { name: functionName, team: "shop", owner: "fn-owner", "aws:cloudformation:stack-name": "demo" },
    });
    const group = `/aws/lambda/${functionName}`;
    await seedLogGroup(group, { owner: "group-owner" }, []);

    // When the user asks which labels it gets
    const result = await runCli(["labels", group]);

    // Then each label names its source, and each dropped tag says why
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/runtime\s+python\s+function configuration \(Runtime python3\.12\)/);
    expect(result.stdout).toMatch(new RegExp(`name\\s+${functionName}\\s+function tag "name"`));
    expect(result.stdout).toMatch(/owner\s+group-owner\s+group tag "owner"/);
    expect(result.stdout).toMatch(
      /function tag\s+owner\s+fn-owner\s+no\s+label owner already comes from the group tag "owner"/,
    );
    expect(result.stdout).toMatch(
      /function tag\s+aws:cloudformation:stack-name\s+demo\s+no\s+denied by "aws:\*"/,
    );
    expect(result.stdout).toMatch(/region\s+eu-central-1\s+fixed/);
    expect(result.stdout).toContain(`Function ${functionName}: runtime python3.12, 4 tag(s).`);
  });

  it("labels: shows the Loki tenant a group's tenant tag chooses, or why it is refused", async () => {
    // Given tenant routing on, one group naming an allowed tenant and one naming another
    const routing = { LABEL_TENANT_TAG: "loki_tenant", LOKI_TENANTS_ALLOWED: "team-a", LOKI_TENANT: "main" };
    const allowed = `/aws/lambda/${uniqueName("tenant-a")}`;
    const refused = `/aws/lambda/${uniqueName("tenant-z")}`;
    await seedLogGroup(allowed, { loki_tenant: "team-a", team: "a" }, []);
    await seedLogGroup(refused, { loki_tenant: "team-z" }, []);

    // When the user asks for their labels
    const [forAllowed, forRefused, forUntagged] = await Promise.all([
      runCli(["labels", allowed], routing),
      runCli(["labels", refused], routing),
      runCli(["labels", pythonGroup], routing),
    ]);

    // Then each names its tenant and where it comes from; the tag itself is no label
    expect(forAllowed.code).toBe(0);
    expect(forAllowed.stdout).toContain(
      'Loki tenant: "team-a", from the group tag "loki_tenant" (allowed by LOKI_TENANTS_ALLOWED).',
    );
    expect(forAllowed.stdout).toMatch(
      /group tag\s+loki_tenant\s+team-a\s+no\s+chooses the Loki tenant \(LABEL_TENANT_TAG\): never a label/,
    );
    expect(forRefused.stdout).toContain(
      'Loki tenant: none, refused: the group tag "loki_tenant" names "team-z"; its events would go to rejected/. tenant "team-z" is not in LOKI_TENANTS_ALLOWED (team-a)',
    );
    expect(forUntagged.stdout).toContain(
      'Loki tenant: the default tenant "main" (LOKI_TENANT): neither the group nor its function has the tag "loki_tenant".',
    );
  });

  it("labels: an unknown log group is one clear line and exit code 2", async () => {
    const result = await runCli(["labels", "/aws/lambda/does-not-exist"]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      `error: Log group /aws/lambda/does-not-exist does not exist in ${TEST_REGION}: check the name and --region`,
    );
  });

  const rulesEnv = {
    LOG_RULES: JSON.stringify([
      { action: "drop", pattern: "GET /health" },
      { action: "mask", builtin: "email" },
      { action: "drop", pattern: "DEBUG", logGroups: "^/aws/lambda/other-" },
    ]),
  };

  it("labels: lists the rules that apply to the group, with their numbers", async () => {
    const result = await runCli(["labels", pythonGroup], rulesEnv);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/rule 1\s+drop \/GET \/health\/\s+all/);
    expect(result.stdout).toMatch(/rule 2\s+mask email\s+all/);
    expect(result.stdout).not.toContain("rule 3");
    expect(result.stdout).toContain("Lambda report lines also carry: duration_ms, billed_duration_ms");
  });

  it("labels and preview: bad rules are one clear line each and exit code 2", async () => {
    const bad = {
      LOG_RULES: JSON.stringify([
        { action: "drop", pattern: "(a" },
        { action: "mask", builtin: "phone" },
      ]),
    };
    for (const command of ["labels", "preview"]) {
      const result = await runCli([command, pythonGroup], bad);
      expect(result.code).toBe(2);
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(3);
      expect(lines[0]).toBe("error: Invalid configuration:");
      expect(lines[1]).toMatch(/^- LOG_RULES rule 1: pattern "\(a" is not a valid RE2 regular expression/);
      expect(lines[2]).toMatch(/^- LOG_RULES rule 2: expected one of .*"builtin":"phone"/);
    }
  });

  it("preview: prints recent events as shipped (labels, metadata, masked line) or dropped, and sends nothing", async () => {
    const group = `/aws/lambda/${uniqueName("fun-preview")}`;
    const requestId = "8f5d3c1e-2b4a-4c6d-9e8f-0a1b2c3d4e5f";
    const start = Date.now() - 20 * 60_000;
    await seedLogGroup(group, { name: "fun-preview", runtime: "nodejs" }, [
      { timestamp: start, message: "GET /health 200", logStream: "s-1" },
      { timestamp: start + 1, message: "signup of jane@example.com", logStream: "s-1" },
      {
        timestamp: start + 2,
        message: `REPORT RequestId: ${requestId}\tDuration: 36.00 ms\tBilled Duration: 36 ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB\t`,
        logStream: "s-1",
      },
      { timestamp: start - 2 * HOUR, message: "too old for --since 1h", logStream: "s-1" },
    ]);

    const result = await runCli(["preview", group, "--since", "1h"], {
      ...rulesEnv,
      LOKI_URL: loki.url,
      LOKI_TENANT: loki.tenant,
    });

    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toMatch(/Z {2}dropped by rule 1\n/);
    expect(out).toContain("line: signup of <email>");
    expect(out).not.toContain("jane@example.com");
    expect(out).toMatch(/\{.*name="fun-preview".*runtime="nodejs".*time_shard="\d{4}-\d\d-\d\dT\d\d"\}/);
    expect(out).toContain(
      `metadata: log_stream=s-1 request_id=${requestId} duration_ms=36 billed_duration_ms=36 memory_size_mb=128 max_memory_used_mb=71 memory_utilization=55.5`,
    );
    expect(out).not.toContain("too old for --since");
    expect(out).toContain("3 event(s): 2 would be shipped, 1 dropped. Nothing was sent.");
    expect(await lokiEntries(loki, `{name="fun-preview"}`, start - 3 * HOUR, Date.now() + 60_000)).toEqual(
      [],
    );
  });

  it("link --dry-run shows the plan and changes nothing; link then subscribes; unlink removes it", async () => {
    const functionArn = await createFunction({ name: uniqueName("shipper") });
    const dryRun = await runCli([
      "link",
      "--log-group",
      pythonGroup,
      "--function-arn",
      functionArn,
      "--dry-run",
    ]);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain("Dry run: what link would do");
    expect(dryRun.stdout).toMatch(new RegExp(`subscribe\\s+${pythonGroup}`));
    const filters = async () =>
      (await logs.send(new DescribeSubscriptionFiltersCommand({ logGroupName: pythonGroup })))
        .subscriptionFilters ?? [];
    expect(await filters()).toEqual([]);

    const linked = await runCli(["link", "--log-group", pythonGroup, "--function-arn", functionArn]);
    expect(linked.code).toBe(0);
    expect(linked.stdout).toContain("1 changed, 0 failed");
    expect((await filters()).map((filter) => filter.destinationArn)).toEqual([functionArn]);

    const unlinked = await runCli(["unlink", "--log-group", pythonGroup, "--function-arn", functionArn]);
    expect(unlinked.code).toBe(0);
    expect(await filters()).toEqual([]);
  });

  it("link skips the pipeline's own log groups given by LOKI_SHIPPER_OWN_LOG_GROUPS", async () => {
    const functionArn = await createFunction({ name: uniqueName("shipper") });
    const result = await runCli(
      ["link", "--log-group", pythonGroup, "--function-arn", functionArn, "--dry-run"],
      {
        LOKI_SHIPPER_OWN_LOG_GROUPS: `/aws/lambda/other,${pythonGroup}`,
      },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`skip\\s+${pythonGroup}: belongs to the shipper itself`));
  });

  it("link: an unknown log group is refused with exit code 2 and nothing changes", async () => {
    const result = await runCli([
      "link",
      "--log-group",
      "/aws/lambda/nope",
      "--function-arn",
      "arn:aws:lambda:eu-central-1:123456789012:function:x",
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      "error: Log group /aws/lambda/nope not found: check the name and --region; nothing was changed",
    );
  });

  it("backfill --local ships the range into Loki and prints the report; status and runs show it", async () => {
    const runId = uniqueName("cli-run");
    const result = await runCli(
      ["backfill", "--local", "--log-group", pythonGroup, "--since", "2h", "--run-id", runId],
      { LOKI_URL: loki.url, LOKI_TENANT: loki.tenant },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`Run ${runId} \\(backfill\\): succeeded`));
    // exported, dropped, pushed, refused, spilled
    expect(result.stdout).toMatch(new RegExp(`${pythonGroup}\\s+300\\s+0\\s+300\\s+0\\s+0`));
    // Not a terminal: progress comes as plain lines, the last one with every slice of the plan done.
    expect(result.stdout).toMatch(
      /backfill \[#{20}\] (\d+)\/\1 slices \| exported 300 \| pushed 300 \|.*\| ETA 0s/,
    );

    const inLoki = await lokiEntries(loki, '{runtime="python"}', now - 2 * HOUR, now + HOUR);
    expect(inLoki.map((entry) => `${entry.ns} ${entry.line}`).sort()).toEqual(expectedEntries(seeded));

    const status = await runCli(["status", runId]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`Run ${runId} (backfill): succeeded`);
    const runs = await runCli(["runs"]);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(new RegExp(`${runId}\\s+backfill\\s+succeeded`));

    // Without its report (as while it runs in AWS), status reads the progress from the checkpoints.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `runs/${runId}/report.json` }));
    const running = await runCli(["status", runId]);
    expect(running.code).toBe(0);
    expect(running.stdout).toContain(`Run ${runId}: running, or stopped`);
    expect(running.stdout).toMatch(
      new RegExp(
        `${runId} \\[#{20}\\] (\\d+)/\\1 slices \\| exported 300 \\| pushed 300 \\| \\d+ events/s \\| throttled 0`,
      ),
    );

    const replay = await runCli(["replay", "--local", "--source", "spill"], {
      LOKI_URL: loki.url,
      LOKI_TENANT: loki.tenant,
    });
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain("(replay)");
  });

  it.skipIf(noTenantLimits)(
    `backfill --local that leaves events in spill/ for the stream limit ends partial with exit code 3 and says what to do (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      // Loki allows one active stream; the group's events lie in at least two hours, so two hour streams.
      const tenant = uniqueName("cli-cap");
      await loki.setTenantLimits(tenant, { max_global_streams_per_user: 1 });
      const result = await runCli(["backfill", "--local", "--log-group", pythonGroup, "--since", "2h"], {
        LOKI_URL: loki.url,
        LOKI_TENANT: tenant,
      });
      expect(result.code).toBe(3);
      expect(result.stdout).toMatch(/\(backfill\): partial/);
      expect(result.stdout).toContain("refused: stream limit");
      expect(result.stdout).toMatch(
        /hint: \d+ event\(s\) refused: stream limit\. .*max_global_streams_per_user/,
      );
      expect(result.stderr.trim()).toMatch(
        /^The run \S+ is partial: \d+ event\(s\) wait in spill\/ and 0 in rejected\//,
      );
    },
  );

  describe("a group of another account", () => {
    const name = `/aws/lambda/${uniqueName("fun-source")}`;
    const arn = `arn:aws:logs:${TEST_REGION}:${SOURCE_ACCOUNT}:log-group:${name}:*`;
    let events: Awaited<ReturnType<typeof seedLogGroup>>;
    beforeAll(async () => {
      const history = spreadEvents("src", now - 100 * 60_000, now - 30 * 60_000, 40);
      events = await seedLogGroup(name, { runtime: "python" }, history, { in: inSourceAccount });
    });

    it("labels takes it by ARN and names the account", async () => {
      const labels = await runCli(["labels", arn]);
      expect(labels.code).toBe(0);
      expect(labels.stdout).toContain(`Labels of ${name} in account ${SOURCE_ACCOUNT} (${TEST_REGION}):`);
      expect(labels.stdout).toMatch(new RegExp(`account\\s+${SOURCE_ACCOUNT}\\s+fixed`));
    });

    it("backfill --local takes it by ARN and its report names the account and region", async () => {
      const result = await runCli(["backfill", "--local", "--log-group", arn, "--since", "2h"], {
        LOKI_URL: loki.url,
        LOKI_TENANT: loki.tenant,
      });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      // exported, dropped, pushed ... then the account and region column.
      expect(result.stdout).toMatch(
        new RegExp(`${name}\\s+40\\s+0\\s+40\\s.*${SOURCE_ACCOUNT} ${TEST_REGION}`),
      );
      const selector = `{account="${SOURCE_ACCOUNT}", log_group="${name}"}`;
      const inLoki = await lokiEntries(loki, selector, now - 2 * HOUR, now);
      expect(inLoki.map((entry) => `${entry.ns} ${entry.line}`).sort()).toEqual(expectedEntries(events));
    });

    it("backfill: an --account that is not 12 digits is one clear line and exit code 2", async () => {
      const bad = await runCli([
        "backfill",
        "--prefix",
        "/aws/lambda/",
        "--account",
        "1234",
        "--since",
        "1h",
      ]);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim()).toBe(
        'error: Invalid backfill request: account must be a 12-digit AWS account id, got "1234"',
      );
    });
  });

  it("backfill --dry-run prints the hour streams and the time the stream budget and the pace imply", async () => {
    // Exactly four whole hours: four hour streams, two at a time, each held 30 + 2 min.
    const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 5 * 3_600_000;
    const range = `${new Date(start).toISOString()}..${new Date(start + 4 * 3_600_000).toISOString()}`;
    const result = await runCli(
      ["backfill", "--local", "--log-group", pythonGroup, "--range", range, "--dry-run"],
      { LOKI_URL: loki.url, LOKI_MAX_GLOBAL_STREAMS_PER_USER: "4" },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /planned — dry run: 4 slice\(s\) planned, nothing exported; 4 hour stream\(s\) to open, at most 2 at a time .*: the stream budget alone makes the run take at least 32 min; the FilterLogEvents pace at least 1 s; the stream limit bounds this run/,
    );
  });

  it("backfill --dry-run names a group whose tenant is not allowed; --include-refused-tenants plans it for rejected/", async () => {
    const refusedTenant = uniqueName("intruder");
    const refusedGroup = `/drill/${uniqueName("cli-refused")}`;
    await seedLogGroup(
      refusedGroup,
      { loki_tenant: refusedTenant },
      spreadEvents("refused", now - 40 * 60_000, now - 30 * 60_000, 5),
    );
    const range = `${new Date(now - 45 * 60_000).toISOString()}..${new Date(now - 15 * 60_000).toISOString()}`;
    const args = [
      "backfill",
      "--local",
      "--log-group",
      pythonGroup,
      refusedGroup,
      "--range",
      range,
      "--dry-run",
    ];
    const env = { LOKI_URL: loki.url, LABEL_TENANT_TAG: "loki_tenant", LOKI_TENANTS_ALLOWED: "team-a" };

    const left = await runCli(args, env);
    const included = await runCli([...args, "--include-refused-tenants"], env);

    expect(left.stderr).toBe("");
    expect(left.code).toBe(0);
    expect(left.stdout).toContain(`${refusedGroup} (tenant "${refusedTenant}")`);
    expect(left.stdout).toContain("not exported: pass --include-refused-tenants");
    expect(included.stderr).toBe("");
    expect(included.code).toBe(0);
    expect(included.stdout).toContain(`${refusedGroup} (tenant "${refusedTenant}")`);
    expect(included.stdout).toContain("exported into rejected/");
  });

  it("backfill: an invalid time range is one clear line and exit code 2", async () => {
    const result = await runCli([
      "backfill",
      "--local",
      "--log-group",
      pythonGroup,
      "--range",
      "2026-11-08..2026-11-01",
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(
      /^error: Invalid backfill request: .*ends .* before it starts .*earlier time first$/,
    );
  });

  it("backfill: an unknown log group is named, exit code 2", async () => {
    const result = await runCli(
      ["backfill", "--local", "--log-group", "/aws/lambda/missing-one", "--since", "2h"],
      {
        LOKI_URL: loki.url,
      },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("/aws/lambda/missing-one");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("backfill --local without a Loki URL says how to give one", async () => {
    const result = await runCli(["backfill", "--local", "--log-group", pythonGroup, "--since", "2h"]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      "error: No Loki URL given: pass --loki-url (e.g. http://127.0.0.1:3100) or set LOKI_URL",
    );
  });

  it("without AWS credentials says how to provide them", async () => {
    const result = await runCli(["labels", pythonGroup], {
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials",
      AWS_CONFIG_FILE: "/nonexistent/config",
    });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(
      "error: no AWS credentials found: set AWS_PROFILE (or pass --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    );
  });
});
