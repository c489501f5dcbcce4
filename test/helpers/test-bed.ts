import { afterAll, beforeAll } from "vitest";
import { startTestLoki, type TestLoki, type TestLokiOptions } from "./loki.ts";
import { createTestBucket } from "./s3.ts";

/** What a test file's tests share: a Loki behind its fault proxy (see loki.ts) and a bucket. */
export interface TestBed {
  readonly loki: TestLoki;
  readonly bucket: string;
}

/**
 * Starts the Loki and creates the bucket before the tests of the file (or describe block) that
 * calls it, and stops the Loki after them; moto's buckets end with the moto server. Read
 * `loki` and `bucket` inside tests and hooks, once they exist.
 */
export function useTestBed(options: TestLokiOptions = {}): TestBed {
  let loki: TestLoki | undefined;
  let bucket: string | undefined;
  beforeAll(async () => {
    loki = await startTestLoki(options);
    bucket = await createTestBucket();
  });
  afterAll(async () => {
    await loki?.close();
  });
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) {
      throw new Error(`the test bed's ${what} is read before it exists: read it inside a test or a hook`);
    }
    return value;
  };
  return {
    get loki() {
      return ready(loki, "Loki");
    },
    get bucket() {
      return ready(bucket, "bucket");
    },
  };
}
