import { describe, expect, it } from "vitest";
import { runBackfillLocally, runReplayLocally } from "../../cli/local-workflow.ts";
import { deliverEvents } from "../../functions/core/delivery/deliver.ts";
import { parseLabelOptions } from "../../functions/core/labels/labels.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import type { LokiPushClient } from "../../functions/core/loki/loki-client.ts";
import { createLokiPushClient, parseLokiTarget } from "../../functions/core/loki/loki-target.ts";
import { uniqueName } from "../helpers/aws.ts";
import { logs, seedLogGroup, spreadEvents } from "../helpers/log-groups.ts";
import { entryKeys, expectedEntries, lokiEntries, lokiEnv } from "../helpers/loki.ts";
import { chunkPrefix, createTestBucket, readChunks, s3 } from "../helpers/s3.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * A replay unit stops pushing after Loki took none of two chunks in a row. What it left must not
 * be lost to a restart with the same run id, and one tenant's refusals must not stop another
 * tenant's chunks. aws-local-stepfunctions runs the state machines with the real task code
 * against moto and the Loki test server behind its fault proxy.
 */
const MINUTE = 60_000;
const bed = useTestBed();

describe("a replay unit stopped because Loki took none of two chunks in a row", () => {
  it("is taken up by a restart with the same runId, which pushes the chunks the unit left", async () => {
    // Given a group of 100 events, exported in chunks of 10, while Loki refuses every push
    // (a gateway answering 401: the fault proxy, no double),
    const bucket = await createTestBucket();
    const team = uniqueName("stopped");
    const name = `/aws/lambda/${uniqueName("stopped")}`;
    const now = Date.now();
    const events = await seedLogGroup(
      name,
      { team },
      spreadEvents("stopped", now - 50 * MINUTE, now - 40 * MINUTE, 100),
    );
    const env = lokiEnv(bed.loki);
    const request = {
      runId: uniqueName("resume"),
      logGroupNames: [name],
      range: `${new Date(now - 50 * MINUTE).toISOString()}..${new Date(now - 30 * MINUTE).toISOString()}`,
      sliceHours: 24,
      maxEventsPerChunk: 10,
    };
    bed.loki.setFault({ kind: "status", status: 401, body: "no credentials" });
    const stopped = await runBackfillLocally(request, { logs, s3, bucket, env }).finally(() =>
      bed.loki.setFault(),
    );
    expect(stopped.status).toBe("incomplete");
    expect(stopped.message).toContain("Loki took none of the last 2 chunks");
    expect(stopped.totals.pushed).toBe(0);
    const spilledFirst = stopped.totals.spilled;
    expect(spilledFirst).toBeLessThan(events.length);

    // When the run is started again with the same runId, Loki taking pushes again,
    const restarted = await runBackfillLocally(request, { logs, s3, bucket, env });

    // Then it pushes every event the stopped unit had not tried; those Loki refused wait in spill/,
    expect(restarted.totals.pushed).toBe(events.length - spilledFirst);
    expect(restarted.status).toBe("partial");
    // and once the drain has taken them, Loki holds every event exactly once.
    const drain = await runReplayLocally(
      { source: "spill", logGroupNames: [name] },
      { logs, s3, bucket, env },
    );
    expect(drain.totals.pushed).toBe(spilledFirst);
    expect(entryKeys(await lokiEntries(bed.loki, `{team="${team}"}`, now - 60 * MINUTE, now))).toEqual(
      expectedEntries(events),
    );
  });
});

describe("a replay unit holding the chunks of two tenants", () => {
  it("keeps pushing one tenant's chunks after Loki refused two of the other's in a row", async () => {
    // Given a group whose tenant tag moved from tenant A to tenant B during an outage: its spill/
    // holds three chunks for A, then two for B (written by the shipper's own delivery),
    const bucket = await createTestBucket();
    const tenantA = uniqueName("refused");
    const tenantB = uniqueName("taken");
    const name = `/drill/${uniqueName("moved")}`;
    const env = {
      ...lokiEnv(bed.loki),
      LABEL_TENANT_TAG: "loki_tenant",
      LOKI_TENANTS_ALLOWED: `${tenantA},${tenantB}`,
    };
    const start = Date.now() - 30 * MINUTE;
    const batches = [tenantA, tenantA, tenantA, tenantB, tenantB].map((tenant, index) => ({
      tenant,
      events: spreadEvents(`moved-${index}`, start + index * MINUTE, start + (index + 1) * MINUTE, 10).map(
        (event, n): LogEvent => ({ ...event, id: `${index}-${n}` }),
      ),
    }));
    await bed.loki.stop();
    try {
      for (const { tenant, events } of batches) {
        await deliverEvents([{ logGroup: name, labels: { log_group: name }, tenant, events }], {
          loki: await createLokiPushClient(parseLokiTarget(env)),
          tenants: parseLabelOptions(env).tenants,
          s3,
          bucket,
          deadline: Date.now() + 10_000,
          retry: { maxAttempts: 1 },
        });
      }
    } finally {
      await bed.loki.restart();
    }
    expect(
      (await readChunks(bucket, chunkPrefix("spill", name))).map(({ chunk }) => chunk.header.tenant),
    ).toEqual([tenantA, tenantA, tenantA, tenantB, tenantB]);

    // When the drain runs while Loki refuses tenant A with 403 (fault double: a gateway in front of
    // Loki that refuses one tenant; neither the test server nor the fault proxy tells tenants apart),
    const drain = await runReplayLocally(
      { source: "spill", logGroupNames: [name] },
      { logs, s3, bucket, env, lokiClient: refusingTenant(tenantA) },
    );

    // Then tenant B's events are all in Loki, in tenant B,
    const eventsOf = (tenant: string) =>
      batches.filter((batch) => batch.tenant === tenant).flatMap((batch) => batch.events);
    const inB = await lokiEntries(
      { url: bed.loki.lokiUrl, tenant: tenantB },
      `{log_group="${name}"}`,
      start - MINUTE,
      Date.now(),
    );
    expect(entryKeys(inB)).toEqual(expectedEntries(eventsOf(tenantB)));
    // tenant A's wait in spill/ (none lost), and the report says which tenant stopped and why.
    const left = await readChunks(bucket, chunkPrefix("spill", name));
    expect(left.every(({ chunk }) => chunk.header.tenant === tenantA)).toBe(true);
    expect(left.flatMap(({ chunk }) => chunk.records.map((record) => record.id)).sort()).toEqual(
      eventsOf(tenantA)
        .map((event) => event.id)
        .sort(),
    );
    expect(drain.totals.pushed).toBe(eventsOf(tenantB).length);
    expect(drain.status).toBe("incomplete");
    expect(drain.message).toContain(`tenant "${tenantA}"`);
  });
});

/** A Loki client whose pushes for `tenant` are answered 403, as a gateway refusing that tenant does. */
function refusingTenant(tenant: string) {
  return async (clientEnv: Record<string, string | undefined>): Promise<LokiPushClient> => {
    const client = await createLokiPushClient(parseLokiTarget(clientEnv));
    return {
      pushUrl: client.pushUrl,
      format: client.format,
      limits: client.limits,
      maxBatchBytes: client.maxBatchBytes,
      maxBatchEntries: client.maxBatchEntries,
      ...(client.tenant ? { tenant: client.tenant } : {}),
      ...(client.storedEntries ? { storedEntries: client.storedEntries } : {}),
      push: async (streams, options) =>
        options?.tenant === tenant
          ? { status: 403, body: `tenant ${tenant} is not allowed here`, bytes: 0, durationMs: 0 }
          : client.push(streams, options),
    };
  };
}
