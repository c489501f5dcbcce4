import { PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { getJson } from "../../functions/core/storage/run-store.ts";
import { acquireLock, LOCK_TTL_MS, releaseLock } from "../../functions/core/workflow/replay-plan.ts";
import { createTestBucket, s3 } from "../helpers/s3.ts";

/** The drain lock is a conditional PutObject (If-None-Match: *), which moto implements like S3. */
describe("drain lock", () => {
  it("lets one drain hold it at a time and frees it on release", async () => {
    const store = { s3, bucket: await createTestBucket() };
    const now = Date.now();
    expect(await acquireLock(store, "locks/test.json", "drain-1", now)).toBeUndefined();
    expect(await acquireLock(store, "locks/test.json", "drain-2", now)).toMatchObject({ runId: "drain-1" });
    expect(await releaseLock(store, "locks/test.json", "drain-2")).toBe(false);
    expect(await releaseLock(store, "locks/test.json", "drain-1")).toBe(true);
    expect(await acquireLock(store, "locks/test.json", "drain-2", now)).toBeUndefined();
  });

  it("takes over a lock whose holder died (expired)", async () => {
    const store = { s3, bucket: await createTestBucket() };
    const then = Date.now() - LOCK_TTL_MS - 60_000;
    await s3.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: "locks/test.json",
        Body: JSON.stringify({
          runId: "dead",
          acquiredAt: new Date(then).toISOString(),
          expiresAt: new Date(then + LOCK_TTL_MS).toISOString(),
        }),
      }),
    );
    expect(await acquireLock(store, "locks/test.json", "drain-3", Date.now())).toBeUndefined();
    expect(await getJson(store, "locks/test.json")).toMatchObject({ runId: "drain-3" });
  });
});
