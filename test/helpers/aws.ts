import { randomBytes } from "node:crypto";
import { inject } from "vitest";

/** Region the tests use; the sample functions of the demo live there too. */
export const TEST_REGION = "eu-central-1";
/** moto's default account id. */
export const TEST_ACCOUNT = "123456789012";

/** Client settings that point a real `@aws-sdk/*` client at the moto server of this test run. */
export function awsClientConfig() {
  return {
    endpoint: inject("motoEndpoint"),
    region: TEST_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  };
}

/** A name no other test uses, so that test files can share one moto server in parallel. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}
