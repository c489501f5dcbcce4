import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/**
 * The Loki endpoint the benchmarks push to: `LOKI_URL` (a real Loki; tenants from
 * `LOKI_TENANT_RAISED` and `LOKI_TENANT_DEFAULT`), or else the project's Loki test server in a child
 * process of its own, so that its CPU is not counted in the pushing process. The local server
 * gets the raised tenant through its `overrides` option, like a real Loki's runtime overrides file.
 */
export interface LokiEndpoint {
  /** Base URL, without the push path. */
  url: string;
  pushUrl: string;
  /** A tenant whose limits do not bind (ingestion rate, burst, per-stream rate, streams raised). */
  raisedTenant: string;
  /** A tenant on Loki's default limits: 4 MB/s, burst 6 MB, 3 MB/s per stream. */
  defaultTenant: string;
  description: string;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;
/** Limits of the raised tenant on the local server: nothing but the server itself binds. */
export const RAISED_LIMITS = {
  ingestionRateMb: 100_000,
  ingestionBurstSizeMb: 100_000,
  perStreamRateLimit: 100_000 * MiB,
  perStreamRateLimitBurst: 100_000 * MiB,
  maxGlobalStreamsPerUser: 1_000_000,
};

export async function openLokiEndpoint(env: Record<string, string | undefined>): Promise<LokiEndpoint> {
  const raisedTenant = env.LOKI_TENANT_RAISED ?? "bench-raised";
  const defaultTenant = env.LOKI_TENANT_DEFAULT ?? "bench-default";
  if (env.LOKI_URL) {
    const url = env.LOKI_URL.replace(/\/loki\/api\/v1\/push\/?$/, "").replace(/\/$/, "");
    return {
      url,
      pushUrl: `${url}/loki/api/v1/push`,
      raisedTenant,
      defaultTenant,
      description: `Loki at ${url} (LOKI_URL)`,
      close: async () => {},
    };
  }
  const child = spawn(
    process.execPath,
    [
      fileURLToPath(new URL("./loki-server-process.ts", import.meta.url)),
      JSON.stringify({ [raisedTenant]: RAISED_LIMITS }),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await firstLine(child);
  return {
    url,
    pushUrl: `${url}/loki/api/v1/push`,
    raisedTenant,
    defaultTenant,
    description: "the project's Loki test server (loki-test-server/), in its own process",
    close: () => stopChild(child),
  };
}

async function firstLine(child: ChildProcess): Promise<string> {
  if (!child.stdout) throw new Error("the Loki test server process has no stdout");
  const lines = createInterface({ input: child.stdout });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`the Loki test server process exited with code ${code}`))),
  );
  const line = new Promise<string>((resolve) => lines.once("line", resolve));
  const answer = await Promise.race([line, exited]);
  lines.close();
  return answer.trim();
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}
