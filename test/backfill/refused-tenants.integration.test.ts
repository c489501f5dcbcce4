import { describe, expect, it } from "vitest";
import { runBackfillLocally } from "../../cli/local-workflow.ts";
import { uniqueName } from "../helpers/aws.ts";
import { logs, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkPrefix, createTestBucket, listKeys, s3 } from "../helpers/s3.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * A backfill over groups whose tenant tag names a tenant outside LOKI_TENANTS_ALLOWED: every event
 * of such a group could only end in rejected/. The plan says so (dry run and real run) and leaves
 * the group out unless the request asks for it. aws-local-stepfunctions runs the state machine
 * with the real task code against moto and the Loki test server.
 */
const TAG = "loki_tenant";
const MINUTE = 60_000;
const bed = useTestBed();

describe("a backfill over a group whose tenant is not allowed", () => {
  it("says so at plan time, dry run included, and exports it only when asked", async () => {
    // Given one group of an allowed tenant and one of a tenant outside the allow list,
    const bucket = await createTestBucket();
    const allowed = uniqueName("team-a");
    const refused = uniqueName("intruder");
    const now = Date.now();
    const names = {
      allowed: `/drill/${uniqueName("allowed-group")}`,
      refused: `/drill/${uniqueName("refused-group")}`,
    };
    const seed = (name: string, tenant: string) =>
      seedLogGroup(name, { [TAG]: tenant }, spreadEvents(tenant, now - 40 * MINUTE, now - 20 * MINUTE, 20));
    const allowedEvents = await seed(names.allowed, allowed);
    const refusedEvents = await seed(names.refused, refused);
    const env = { ...lokiEnv(bed.loki), LABEL_TENANT_TAG: TAG, LOKI_TENANTS_ALLOWED: allowed };
    const request = {
      logGroupNames: [names.allowed, names.refused],
      range: `${new Date(now - 45 * MINUTE).toISOString()}..${new Date(now - 15 * MINUTE).toISOString()}`,
      sliceHours: 24,
    };

    // When the backfill is planned as a dry run,
    const dryRun = await runBackfillLocally({ ...request, dryRun: true }, { logs, s3, bucket, env });

    // Then the report names the refused group and its tenant, and how to include it;
    expect(dryRun.status).toBe("planned");
    expect(dryRun.message).toContain(`${names.refused} (tenant "${refused}")`);
    expect(dryRun.message).toContain("includeRefusedTenants");

    // when it runs for real, the refused group is left out: nothing of it in rejected/,
    const real = await runBackfillLocally(request, { logs, s3, bucket, env });
    expect(real.message).toContain(`${names.refused} (tenant "${refused}")`);
    expect(real.status).toBe("succeeded");
    expect(await listKeys(bucket, chunkPrefix("rejected", names.refused))).toEqual([]);
    expect(real.groups.find((group) => group.logGroup === names.refused)?.exported).toBe(0);
    expect(
      entryKeys(
        await lokiEntries(
          { url: bed.loki.lokiUrl, tenant: allowed },
          `{log_group="${names.allowed}"}`,
          now - 45 * MINUTE,
          now,
        ),
      ),
    ).toEqual(expectedEntries(allowedEvents));

    // and when asked to include it, its events go to rejected/ with the reason, as before.
    const included = await runBackfillLocally(
      { ...request, logGroupNames: [names.refused], includeRefusedTenants: true },
      { logs, s3, bucket, env },
    );
    expect(included.status).toBe("partial");
    expect(included.totals.refused).toEqual({ tenant_not_allowed: refusedEvents.length });
    expect(included.message).toContain("exported into rejected/");
  });
});
