import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startRealLoki } from "../scripts/real-loki.ts";
import {
  type LokiLimits,
  waitForTenantOverrides,
  writeTenantOverrides,
} from "../test/helpers/loki-overrides.ts";

/**
 * The Loki endpoint the benchmarks push to: `LOKI_URL` (a running Loki; tenants from
 * `LOKI_TENANT_RAISED` and `LOKI_TENANT_DEFAULT`), `LOKI_BIN` (a Loki binary, started here on free
 * ports with default limits, the raised tenant's in its runtime-overrides file), or else the
 * project's Loki test server in a child process of its own, so that its CPU is not counted in the
 * pushing process. The local server gets the raised tenant through its `overrides` option.
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
  /** The Loki process, when this process started it (so that it can be pinned to a core). */
  lokiPid: number | undefined;
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
      lokiPid: undefined,
      close: async () => {},
    };
  }
  if (env.LOKI_BIN) return startLokiBinary(env.LOKI_BIN, raisedTenant, defaultTenant);
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
    lokiPid: child.pid,
    close: () => stopChild(child),
  };
}

/** The raised tenant's limits in a real Loki's runtime-overrides file (Loki's names and units). */
const RAISED_OVERRIDES: LokiLimits = {
  ingestion_rate_mb: RAISED_LIMITS.ingestionRateMb,
  ingestion_burst_size_mb: RAISED_LIMITS.ingestionBurstSizeMb,
  per_stream_rate_limit: "100GB",
  per_stream_rate_limit_burst: "100GB",
  max_global_streams_per_user: RAISED_LIMITS.maxGlobalStreamsPerUser,
};

async function startLokiBinary(
  bin: string,
  raisedTenant: string,
  defaultTenant: string,
): Promise<LokiEndpoint> {
  const loki = await startRealLoki({ bin });
  // As the tests set limits on a real Loki: its runtime-overrides file, then its /metrics.
  await writeTenantOverrides(loki.overridesFile, raisedTenant, RAISED_OVERRIDES);
  await waitForTenantOverrides(loki.url, raisedTenant, RAISED_OVERRIDES);
  return {
    url: loki.url,
    pushUrl: `${loki.url}/loki/api/v1/push`,
    raisedTenant,
    defaultTenant,
    description: `Grafana Loki from LOKI_BIN (${bin}), single binary, default limits`,
    lokiPid: loki.pid,
    close: () => loki.stop(),
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
