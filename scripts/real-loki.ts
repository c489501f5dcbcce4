import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePort, stopChild } from "./moto-server.ts";

/**
 * A real Grafana Loki binary (LOKI_BIN) for the tests, on free 127.0.0.1 ports with a config of its
 * own in a temporary folder: a runtime-overrides file the tests write tenant limits into, a short
 * reload period, a short chunk idle period, and queries that reach the ingesters for any age. It
 * runs with the overrides exporter, so that `GET /metrics` shows which tenant limits are in force.
 *
 *   LOKI_BIN=/path/to/loki node scripts/real-loki.ts -- vitest run
 *
 * starts Loki, runs the command with LOKI_TEST_URL, LOKI_TEST_OVERRIDES, LOKI_TEST_OVERRIDES_PERIOD
 * LOKI_TEST_CHUNK_IDLE_PERIOD and LOKI_TEST_QUERY_INGESTERS_WITHIN set, stops Loki by its PID and exits with the command's status.
 * Without a command it prints those variables and runs until Ctrl-C.
 */
export interface RealLoki {
  url: string;
  overridesFile: string;
  /** The variables that point the test suite at this Loki. */
  testEnv: Record<string, string>;
  logFile: string;
  /** The Loki process's id (it changes with crashAndRestart). */
  readonly pid: number | undefined;
  /** Kills Loki with SIGKILL and starts it again on the same data (it replays its WAL). */
  crashAndRestart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RealLokiOptions {
  /** The Loki binary. */
  bin: string;
  /** How often Loki reloads the overrides file (Loki's default is 10 s). */
  reloadPeriod?: string;
  /** A stream idle this long is flushed and leaves the tenant's active-stream count (Loki: 30m). */
  chunkIdlePeriod?: string;
}

const READY_TIMEOUT_MS = 60_000;

export async function startRealLoki(options: RealLokiOptions): Promise<RealLoki> {
  const reloadPeriod = options.reloadPeriod ?? "1s";
  const chunkIdlePeriod = options.chunkIdlePeriod ?? "4s";
  const dir = await mkdtemp(join(tmpdir(), "real-loki-"));
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const overridesFile = join(dir, "overrides.yaml");
  const configFile = join(dir, "loki.yaml");
  await writeFile(overridesFile, stringify({ overrides: {} }));
  await writeFile(
    configFile,
    stringify(lokiConfig({ dir, httpPort, grpcPort, overridesFile, reloadPeriod, chunkIdlePeriod })),
  );

  const logFile = join(dir, "loki.log");
  const log = createWriteStream(logFile, { flags: "a" });
  const args = [`-config.file=${configFile}`, "-target=all,overrides-exporter"];
  const url = `http://127.0.0.1:${httpPort}`;
  let child = await spawnLoki(options.bin, args, log);
  try {
    await waitUntilReady(child, url, logFile);
  } catch (error) {
    await stopChild(child, 10_000);
    throw error;
  }
  return {
    url,
    overridesFile,
    logFile,
    get pid() {
      return child.pid;
    },
    testEnv: {
      LOKI_TEST_URL: url,
      LOKI_TEST_OVERRIDES: overridesFile,
      LOKI_TEST_OVERRIDES_PERIOD: reloadPeriod,
      LOKI_TEST_CHUNK_IDLE_PERIOD: chunkIdlePeriod,
      LOKI_TEST_QUERY_INGESTERS_WITHIN: "0s",
      // This process restarts Loki on SIGUSR2 (see main): tests that need a crash send it.
      LOKI_TEST_RESTART_PID: String(process.pid),
    },
    async crashAndRestart() {
      // kill -9: no clean shutdown, no flush; the new process replays the WAL in the same folder.
      child.kill("SIGKILL");
      await new Promise((resolve) =>
        child.exitCode === null ? child.once("exit", resolve) : resolve(undefined),
      );
      child = await spawnLoki(options.bin, args, log);
      await waitUntilReady(child, url, logFile);
    },
    async stop() {
      await stopChild(child, 10_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function spawnLoki(bin: string, args: string[], log: NodeJS.WritableStream): Promise<ChildProcess> {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) =>
      reject(new Error(`could not start Loki from LOKI_BIN=${bin}: ${error.message}`)),
    );
  });
  return child;
}

interface ConfigInput {
  dir: string;
  httpPort: number;
  grpcPort: number;
  overridesFile: string;
  reloadPeriod: string;
  chunkIdlePeriod: string;
}

/** Loki's single-binary config with default limits; only what tests need to observe differs. */
function lokiConfig(input: ConfigInput): Record<string, unknown> {
  return {
    auth_enabled: true,
    server: {
      http_listen_address: "127.0.0.1",
      http_listen_port: input.httpPort,
      grpc_listen_address: "127.0.0.1",
      grpc_listen_port: input.grpcPort,
      log_level: "warn",
    },
    common: {
      path_prefix: input.dir,
      instance_addr: "127.0.0.1",
      storage: {
        filesystem: {
          chunks_directory: join(input.dir, "chunks"),
          rules_directory: join(input.dir, "rules"),
        },
      },
      replication_factor: 1,
      ring: { kvstore: { store: "inmemory" } },
    },
    schema_config: {
      configs: [
        {
          from: "2020-10-24",
          store: "tsdb",
          object_store: "filesystem",
          schema: "v13",
          index: { prefix: "index_", period: "24h" },
        },
      ],
    },
    // Tests push hours-old history and read it back at once: the ingesters answer for any age.
    querier: { query_ingesters_within: 0 },
    ingester: {
      chunk_idle_period: input.chunkIdlePeriod,
      // Idle streams are flushed and leave the active-stream count at the next check (30 s by default).
      flush_check_period: "500ms",
      // Ready as soon as it has joined the ring (15 s by default), so that a restart takes seconds.
      lifecycler: { min_ready_duration: "0s" },
      query_store_max_look_back_period: "-1ns",
    },
    runtime_config: { file: input.overridesFile, period: input.reloadPeriod },
    analytics: { reporting_enabled: false },
  };
}

async function waitUntilReady(child: ChildProcess, url: string, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`Loki exited with code ${child.exitCode} before it was ready:\n${await tail(logFile)}`);
    }
    try {
      const answer = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1_000) });
      if (answer.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(
    `Loki at ${url} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${await tail(logFile)}`,
  );
}

async function tail(file: string): Promise<string> {
  return (await readFile(file, "utf8").catch(() => "")).split("\n").slice(-20).join("\n");
}

async function main(argv: string[]): Promise<number> {
  const bin = process.env.LOKI_BIN;
  if (!bin) {
    console.error(
      "LOKI_BIN is not set: give the path of a Grafana Loki binary, e.g. LOKI_BIN=/usr/local/bin/loki",
    );
    return 2;
  }
  const separator = argv.indexOf("--");
  const command = separator >= 0 ? argv.slice(separator + 1) : [];
  const loki = await startRealLoki({ bin });
  console.log(`Loki from ${bin} is ready at ${loki.url} (log: ${loki.logFile})`);
  const stopOnSignal = () => void loki.stop().then(() => process.exit(130));
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  process.on("SIGUSR2", () => {
    loki.crashAndRestart().then(
      () => console.log("Loki was killed and is ready again"),
      (error: Error) => console.error(`Loki did not come back after the kill: ${error.message}`),
    );
  });
  if (command.length === 0) {
    for (const [name, value] of Object.entries(loki.testEnv)) console.log(`export ${name}=${value}`);
    console.log("Ctrl-C stops Loki.");
    await new Promise(() => {});
  }
  const [program, ...args] = command as [string, ...string[]];
  const run = spawn(program, args, { stdio: "inherit", env: { ...process.env, ...loki.testEnv } });
  const status = await new Promise<number>((resolve) => run.once("exit", (code) => resolve(code ?? 1)));
  await loki.stop();
  return status;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
