import type { TestProject } from "vitest/node";
import { type MotoServer, startMotoServer } from "../../scripts/moto-server.ts";

/**
 * Starts moto's server for the whole test run, so that the real `@aws-sdk/*` clients are exercised
 * over HTTP. Tests read the endpoint with `inject("motoEndpoint")` (see test/helpers/aws.ts).
 */
declare module "vitest" {
  export interface ProvidedContext {
    motoEndpoint: string;
  }
}

let moto: MotoServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  moto = await startMotoServer();
  project.provide("motoEndpoint", moto.endpoint);
}

export async function teardown(): Promise<void> {
  await moto?.stop();
}
