import { describe, expect, it } from "vitest";
import { deliverEvents, type GroupBatch } from "../../functions/core/delivery/deliver.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import type { LokiPushClient } from "../../functions/core/loki/loki-client.ts";
import { createLokiPushClient, parseLokiTarget } from "../../functions/core/loki/loki-target.ts";
import { cloudWatchEventId, lineOfBytes } from "../fixtures/subscription.ts";
import { uniqueName } from "../helpers/aws.ts";
import { lokiEntries, NO_TENANT_LIMITS_REASON, noTenantLimits } from "../helpers/loki.ts";
import { readChunks, s3 } from "../helpers/s3.ts";
import { useTestBed } from "../helpers/test-bed.ts";

/**
 * What Loki refuses of a push: pre-checked before pushing where the shipper knows the limits, and
 * attributed from Loki's 400 body (each push carries one stream; else found by halves) where the
 * target's limits are stricter than configured. Refused events land in rejected/ with the reason.
 */
const HOUR = 3_600_000;

const bed = useTestBed();

function event(timestamp: number, message: string, logStream = "s"): LogEvent {
  return { id: cloudWatchEventId(timestamp), timestamp, message, logStream };
}

async function clientFor(tenant: string, extra: Record<string, string> = {}): Promise<LokiPushClient> {
  return createLokiPushClient(parseLokiTarget({ LOKI_URL: bed.loki.url, LOKI_TENANT: tenant, ...extra }));
}

/** Delivers one log group's events for `tenant` (labelled `group=<tenant>`), with 10 s to spare. */
function deliverAs(tenant: string, logGroup: string, events: LogEvent[]) {
  return clientFor(tenant).then((client) =>
    deliverEvents([{ logGroup, labels: { group: tenant }, events }], {
      loki: client,
      s3,
      bucket: bed.bucket,
      deadline: Date.now() + 10_000,
    }),
  );
}

/** What Loki holds of `tenant`'s group in `[startMs, endMs)`. */
function storedOf(tenant: string, startMs: number, endMs: number) {
  return lokiEntries({ url: bed.loki.lokiUrl, tenant }, `{group="${tenant}"}`, startMs, endMs);
}

async function rejectedOf(logGroup: string) {
  return (await readChunks(bed.bucket, `rejected/${encodeURIComponent(logGroup)}/`)).flatMap(
    ({ chunk }) => chunk.records,
  );
}

describe("pre-checks", () => {
  it("keeps too old, too new and too long events in rejected/ without pushing them", async () => {
    const tenant = uniqueName("pre");
    const logGroup = `/pre/${tenant}`;
    const now = Date.now();
    const events = [
      event(now - 8 * 24 * HOUR, "eight days old"),
      event(now + 20 * 60_000, "twenty minutes ahead"),
      event(now - 1000, lineOfBytes(262_145)),
      event(now - 1000, lineOfBytes(262_144)),
      event(now - 2000, "fine"),
    ];
    const report = await deliverAs(tenant, logGroup, events);

    expect(report).toMatchObject({
      pushed: 2,
      spilled: 0,
      refused: { too_old: 1, too_new: 1, line_too_long: 1 },
    });
    expect(report.requests).toBe(1);
    const stored = await storedOf(tenant, now - HOUR, now + HOUR);
    expect(stored.map((entry) => entry.line.length).sort((a, b) => a - b)).toEqual([4, 262_144]);
    const rejected = await rejectedOf(logGroup);
    expect(rejected.map((record) => record.reason?.split(":")[0]).sort()).toEqual([
      "line too long",
      "timestamp too new",
      "timestamp too old",
    ]);
  });
});

describe("refusals the shipper could not foresee", () => {
  it.skipIf(noTenantLimits)(
    `attributes Loki's 'Max entry size' 400 to the entry and stores the rest (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      const tenant = uniqueName("line");
      await bed.loki.setTenantLimits(tenant, { max_line_size: 1000 });
      const logGroup = `/line/${tenant}`;
      const now = Date.now();
      const events = [
        event(now - 3000, "short one"),
        event(now - 2000, lineOfBytes(1001)),
        event(now - 1000, "short two"),
      ];

      const report = await deliverAs(tenant, logGroup, events);

      expect(report).toMatchObject({ pushed: 2, refused: { line_too_long: 1 }, spilled: 0 });
      expect(report.requests).toBe(1);
      const stored = await storedOf(tenant, now - HOUR, now + HOUR);
      expect(stored.map((entry) => entry.line).sort()).toEqual(["short one", "short two"]);
      const [refused] = await rejectedOf(logGroup);
      expect(refused?.id).toBe(events[1]?.id);
      expect(refused?.reason).toMatch(
        /^Max entry size '1000' bytes exceeded for stream '.*' while adding an entry with length '1001' bytes$/,
      );
    },
  );

  it.skipIf(noTenantLimits)(
    `pushes each stream alone, so that each refusal is attributed to its stream's entries (${NO_TENANT_LIMITS_REASON})`,
    async () => {
      const tenant = uniqueName("multi");
      // The target refuses what is older than 2h; the shipper is configured with Loki's default (1 week).
      await bed.loki.setTenantLimits(tenant, { reject_old_samples_max_age: "2h" });
      const logGroup = `/multi/${tenant}`;
      const now = Date.now();
      const old = [event(now - 3 * HOUR, "old a"), event(now - 3 * HOUR + 1, "old b")];
      const recent = [event(now - 60_000, "recent a"), event(now - 50_000, "recent b")];
      const batches: GroupBatch[] = [{ logGroup, labels: { group: tenant }, events: [...old, ...recent] }];

      const report = await deliverEvents(batches, {
        loki: await clientFor(tenant),
        s3,
        bucket: bed.bucket,
        deadline: Date.now() + 10_000,
      });

      // Two time shards = two streams = two requests; the old one's 400 names its entries.
      expect(report).toMatchObject({ pushed: 2, refused: { too_old: 2 }, spilled: 0 });
      expect(report.requests).toBe(2);
      const stored = await storedOf(tenant, now - 4 * HOUR, now + HOUR);
      expect(stored.map((entry) => entry.line).sort()).toEqual(["recent a", "recent b"]);
      const refused = await rejectedOf(logGroup);
      expect(refused.map((record) => record.message).sort()).toEqual(["old a", "old b"]);
      expect(refused[0]?.reason).toMatch(/has timestamp too old: .*, oldest acceptable timestamp is: /);
    },
  );

  it("halves a push that Loki fails as over its 4 MiB message size, and delivers all of it", async () => {
    const tenant = uniqueName("grpc");
    const logGroup = `/grpc/${tenant}`;
    const now = Date.now();
    const events = Array.from({ length: 20 }, (_, index) => event(now - 10_000 + index, `line ${index}`));
    // Injected: the test server cannot be made to exceed 4 MiB with the shipper's own batch limit.
    bed.loki.setFault({
      kind: "status",
      status: 500,
      body: "rpc error: code = ResourceExhausted desc = grpc: received message larger than max (5000000 vs. 4194304)\n",
      times: 1,
    });

    const report = await deliverAs(tenant, logGroup, events);

    expect(report).toMatchObject({ pushed: 20, spilled: 0, refused: {}, requests: 3 });
    const stored = await storedOf(tenant, now - HOUR, now + HOUR);
    expect(stored).toHaveLength(20);
  });

  it("splits a single-stream push whose 400 it cannot attribute until each refused entry is found", async () => {
    const tenant = uniqueName("bisect");
    const logGroup = `/bisect/${tenant}`;
    const now = Date.now();
    const events = Array.from({ length: 4 }, (_, index) => event(now - 10_000 + index, `line ${index}`));
    // Injected: a 400 with a body in no known format (e.g. from a proxy); the next pushes succeed.
    bed.loki.setFault({ kind: "status", status: 400, body: "request rejected by policy\n", times: 1 });

    const report = await deliverAs(tenant, logGroup, events);

    // One refused push, then its two halves, both accepted: every entry's fate is known.
    expect(report).toMatchObject({ pushed: 4, spilled: 0, refused: {}, requests: 3 });
    const stored = await storedOf(tenant, now - HOUR, now + HOUR);
    expect(stored).toHaveLength(4);
  });

  it("pushes without structured metadata when the tenant does not allow it", async () => {
    const tenant = uniqueName("nosm");
    const logGroup = `/nosm/${tenant}`;
    // Injected: the body real Loki sends when limits_config.allow_structured_metadata is false.
    bed.loki.setFault({
      kind: "status",
      status: 400,
      body: "stream '{group=\"x\"}' includes structured metadata, but this feature is disallowed. Please see `limits_config.structured_metadata` or contact your Loki administrator to enable it.\n",
      times: 1,
    });
    const events = [event(Date.now() - 1000, "a"), event(Date.now() - 900, "b")];

    const report = await deliverAs(tenant, logGroup, events);

    // The refused push, then the same entries without metadata: both stored, nothing kept aside.
    expect(report).toMatchObject({ pushed: 2, spilled: 0, refused: {}, requests: 2 });
    const stored = await storedOf(tenant, Date.now() - HOUR, Date.now() + HOUR);
    expect(stored.map((entry) => entry.line).sort()).toEqual(["a", "b"]);
    expect(stored.every((entry) => entry.labels.log_stream === undefined)).toBe(true);
    expect(await readChunks(bed.bucket, `spill/${encodeURIComponent(logGroup)}/`)).toEqual([]);
  });

  it("spills everything when Loki refuses the credentials, without retrying", async () => {
    const tenant = uniqueName("auth");
    const logGroup = `/auth/${tenant}`;
    bed.loki.setFault({ kind: "status", status: 401, body: "invalid token\n", times: 1 });
    const events = [event(Date.now() - 1000, "a"), event(Date.now() - 900, "b")];

    const report = await deliverAs(tenant, logGroup, events);

    expect(report).toMatchObject({ pushed: 0, spilled: 2, retries: 0, requests: 1 });
    const [spill] = await readChunks(bed.bucket, `spill/${encodeURIComponent(logGroup)}/`);
    expect(spill?.chunk.header.reason).toBe("Loki answered 401: invalid token");
  });
});
