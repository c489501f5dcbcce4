import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";

/**
 * moto's AWS emulator as a child process on a free 127.0.0.1 port, for the tests and the local demo.
 * It serves CloudWatch Logs, S3, Step Functions, Secrets Manager, SSM, STS, IAM and Lambda on one port.
 */
export interface MotoServer {
  endpoint: string;
  stop(): Promise<void>;
}

const MOTO_COMMAND = process.env.MOTO_SERVER ?? "moto_server";

export async function startMotoServer(): Promise<MotoServer> {
  if (spawnSync(MOTO_COMMAND, ["--help"], { stdio: "ignore" }).error) {
    throw new Error(
      `${MOTO_COMMAND} was not found on PATH (moto's AWS emulator): install it with pip install "moto[server]"`,
    );
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(MOTO_COMMAND, ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderrTail = "";
  child.stderr?.on("data", (data: Buffer) => {
    stderrTail = (stderrTail + data.toString()).slice(-4000);
  });
  await waitUntilAnswering(child, endpoint, 30_000, () => stderrTail);
  return { endpoint, stop: () => stopChild(child) };
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, graceMs))]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

/** A TCP port on 127.0.0.1 that nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no free port found")),
      );
    });
  });
}

async function waitUntilAnswering(
  child: ChildProcess,
  url: string,
  timeoutMs: number,
  stderrTail: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`moto_server exited with code ${child.exitCode} before answering: ${stderrTail()}`);
    }
    try {
      await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  await stopChild(child);
  throw new Error(`moto_server did not answer on ${url} within ${timeoutMs} ms: ${stderrTail()}`);
}
