import { Command, InvalidArgumentError, Option } from "commander";
import { startLokiTestServer } from "./index.ts";
import { DEFAULT_CHUNK_IDLE_PERIOD_MS } from "./ingest.ts";
import { DEFAULT_RUNTIME_CONFIG_PERIOD_MS } from "./runtime-config.ts";
import { parseDurationMs } from "./units.ts";

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`not a port number: ${value}`);
  }
  return port;
}

function durationOption(flag: string): (value: string) => number {
  return (value) => {
    try {
      return parseDurationMs(value, flag);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

const program = new Command()
  .name("local-loki")
  .description("In-memory server with Grafana Loki's push and query HTTP API, for local runs and tests.")
  .option("--port <port>", "port to listen on", parsePort, 3100)
  .option("--host <host>", "interface to listen on", "127.0.0.1")
  .option(
    "--overrides <file>",
    "per-tenant limits in Loki's runtime overrides YAML format, read again every --runtime-config-period",
  )
  .addOption(
    new Option(
      "--runtime-config-period <duration>",
      "how often the overrides file is read again, like Loki's runtime_config.period",
    )
      .argParser(durationOption("--runtime-config-period"))
      .default(DEFAULT_RUNTIME_CONFIG_PERIOD_MS, "10s"),
  )
  .option(
    "--query-ingesters-within <duration>",
    "hide entries older than this from queries, like Loki's querier.query_ingesters_within (e.g. 3h)",
    durationOption("--query-ingesters-within"),
  )
  .addOption(
    new Option(
      "--chunk-idle-period <duration>",
      "how long a stream without pushes stays active (counts against max_global_streams_per_user), " +
        "like Loki's ingester chunk_idle_period",
    )
      .argParser(durationOption("--chunk-idle-period"))
      .default(DEFAULT_CHUNK_IDLE_PERIOD_MS, "30m"),
  )
  .parse();

const options = program.opts<{
  port: number;
  host: string;
  overrides?: string;
  queryIngestersWithin?: number;
  chunkIdlePeriod: number;
  runtimeConfigPeriod: number;
}>();

try {
  const server = await startLokiTestServer({
    port: options.port,
    host: options.host,
    ...(options.overrides
      ? {
          overridesFile: options.overrides,
          runtimeConfigPeriodMs: options.runtimeConfigPeriod,
          onOverridesReloadError: (error: Error) => {
            console.error(`local-loki: keeping the previous limits: ${error.message}`);
          },
        }
      : {}),
    chunkIdlePeriodMs: options.chunkIdlePeriod,
    ...(options.queryIngestersWithin !== undefined
      ? { queryIngestersWithinMs: options.queryIngestersWithin }
      : {}),
  });
  console.log(`Loki test server listening on ${server.url}`);
  const shutDown = () => {
    void server.close().then(() => process.exit(0));
  };
  process.on("SIGINT", shutDown);
  process.on("SIGTERM", shutDown);
} catch (error) {
  console.error(`local-loki: ${(error as Error).message}`);
  process.exit(1);
}
