import { randomBytes } from "node:crypto";
import type { Runtime } from "@aws-sdk/client-lambda";
import { inject } from "vitest";
import { createMotoFunction } from "../../scripts/moto-functions.ts";

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

/** A function in moto (see scripts/moto-functions.ts); returns its ARN. */
export function createFunction(fn: {
  name: string;
  runtime?: Runtime;
  tags?: Record<string, string>;
}): Promise<string> {
  return createMotoFunction(awsClientConfig(), fn);
}
