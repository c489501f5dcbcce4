import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import type { TestProject } from "vitest/node";

/**
 * Starts moto's server (an AWS emulator) on a free 127.0.0.1 port for the whole test run, so that
 * the real `@aws-sdk/*` clients are exercised over HTTP. Tests read the endpoint with
 * `inject("motoEndpoint")` (see test/helpers/aws.ts).
 */
declare module "vitest" {
  export interface ProvidedContext {
    motoEndpoint: string;
  }
}

const MOTO_COMMAND = process.env.MOTO_SERVER ?? "moto_server";

let moto: ChildProcess | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (spawnSync(MOTO_COMMAND, ["--help"], { stdio: "ignore" }).error) {
    throw new Error(
      `moto_server was not found on PATH (the tests need moto's AWS emulator): install it with pip install "moto[server]"`,
    );
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  moto = spawn(MOTO_COMMAND, ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  moto.stderr?.on("data", (data: Buffer) => {
    stderr = (stderr + data.toString()).slice(-4000);
  });
  await waitForHttp(endpoint, 30_000, () => stderr);
  project.provide("motoEndpoint", endpoint);
}

export async function teardown(): Promise<void> {
  if (!moto || moto.exitCode !== null) return;
  const exited = new Promise((resolve) => moto?.once("exit", resolve));
  moto.kill("SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
  if (moto.exitCode === null) moto.kill("SIGKILL");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

async function waitForHttp(url: string, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (moto?.exitCode !== null) {
      throw new Error(`moto_server exited with code ${moto?.exitCode} before answering: ${stderr()}`);
    }
    try {
      await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`moto_server did not answer on ${url} within ${timeoutMs} ms: ${stderr()}`);
}
