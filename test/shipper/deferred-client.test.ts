import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { deferredClient } from "../../functions/core/deferred-client.ts";
import { awsClientConfig } from "../helpers/aws.ts";
import { createTestBucket } from "../helpers/s3.ts";

describe("deferredClient", () => {
  it("creates the client on the first send, once, and sends through it", async () => {
    const bucket = await createTestBucket();
    let created = 0;
    const s3 = deferredClient<S3Client>(async () => {
      created += 1;
      return new S3Client(awsClientConfig());
    });
    expect(created).toBe(0);

    const answers = await Promise.all([
      s3.send(new HeadBucketCommand({ Bucket: bucket })),
      s3.send(new HeadBucketCommand({ Bucket: bucket })),
    ]);

    expect(created).toBe(1);
    expect(answers.map((answer) => answer.$metadata.httpStatusCode)).toEqual([200, 200]);
  });

  it("passes the service's error through", async () => {
    const s3 = deferredClient<S3Client>(async () => new S3Client(awsClientConfig()));

    await expect(s3.send(new HeadBucketCommand({ Bucket: "no-such-bucket-here" }))).rejects.toMatchObject({
      name: "NotFound",
    });
  });

  it("tries to create the client again after a creation failed", async () => {
    // A failing creation (the SDK package cannot be loaded) is not something moto can cause:
    // the factory fails once by itself.
    const bucket = await createTestBucket();
    let attempts = 0;
    const s3 = deferredClient<S3Client>(async () => {
      attempts += 1;
      if (attempts === 1) throw new Error("package not loaded");
      return new S3Client(awsClientConfig());
    });

    await expect(s3.send(new HeadBucketCommand({ Bucket: bucket }))).rejects.toThrow("package not loaded");
    const answer = await s3.send(new HeadBucketCommand({ Bucket: bucket }));

    expect(attempts).toBe(2);
    expect(answer.$metadata.httpStatusCode).toBe(200);
  });
});
