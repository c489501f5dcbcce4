import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import { type Fault, FaultInjector } from "./faults.ts";
import { type RouteContext, route } from "./http-routes.ts";
import { DEFAULT_CHUNK_IDLE_PERIOD_MS, Ingester } from "./ingest.ts";
import { LimitsRegistry, type TenantLimits } from "./limits.ts";
import { watchOverridesFile } from "./runtime-config.ts";
import { LogStore } from "./store.ts";

export type { Fault } from "./faults.ts";
export { DEFAULT_TENANT_LIMITS, type TenantLimits } from "./limits.ts";
export { parseOverrides, readOverridesFile } from "./overrides-file.ts";

export interface LokiTestServerOptions {
  /** Port to listen on; 0 or absent picks a free one. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Per-tenant limits over Loki's defaults, like Loki's runtime overrides file. */
  overrides?: Record<string, Partial<TenantLimits>>;
  /**
   * Loki's `querier.query_ingesters_within` (3h by default in Loki): entries older than this,
   * not yet flushed to the store, are not returned by queries. 0 (default here) returns all, which
   * is what tests of backfill need; set it to reproduce Loki's behaviour.
   */
  queryIngestersWithinMs?: number;
  /**
   * Loki's ingester `chunk_idle_period` (30m by default): a stream without pushes for this long is
   * flushed and no longer counts against `max_global_streams_per_user`. Tests of the active-stream
   * limit set a short one instead of waiting 30 minutes.
   */
  chunkIdlePeriodMs?: number;
  /**
   * A runtime-overrides YAML file (Loki's format), read at start and again every
   * `runtimeConfigPeriodMs` like Loki's `runtime_config.file`. Its limits sit below `overrides`
   * and `setTenantLimits`.
   */
  overridesFile?: string;
  /** Loki's `runtime_config.period`: how often `overridesFile` is read again (default 10s). */
  runtimeConfigPeriodMs?: number;
  /** Called when a reload of `overridesFile` fails; the limits read before stay in force. */
  onOverridesReloadError?: (error: Error) => void;
}

export interface LokiTestServer {
  url: string;
  port: number;
  /** Stops listening and frees everything. */
  close(): Promise<void>;
  /** Stops listening and drops open connections (clients see "connection refused"); data is kept. */
  stop(): Promise<void>;
  /** Listens again on the same port, with the data stored before (stream rates kept as they were). */
  restart(): Promise<void>;
  /**
   * Counts every entry of the streams pushed to within `chunk_idle_period` as pushed now, as a
   * restarted Loki's WAL replay does: their next pushes may be sharded (see stream sharding).
   */
  replayWal(): void;
  setFault(fault?: Fault): void;
  setTenantLimits(tenant: string, limits: Partial<TenantLimits>): void;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

/** An HTTP listener that can stop (dropping open connections) and listen again on the same port. */
function restartableListener(host: string, context: RouteContext) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const open = async (port: number): Promise<number> => {
    const created = createServer((req, res) => {
      void route(req, res, context);
    });
    created.keepAliveTimeout = 30_000;
    created.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    const bound = await listen(created, port, host);
    server = created;
    return bound;
  };
  const close = async (): Promise<void> => {
    const current = server;
    if (!current) return;
    server = undefined;
    const closed = new Promise<void>((resolve) => current.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await closed;
  };
  return { open, close, isOpen: () => server !== undefined };
}

function watchOverrides(limits: LimitsRegistry, options: LokiTestServerOptions): Promise<() => void> {
  if (!options.overridesFile) return Promise.resolve(() => {});
  return watchOverridesFile(limits, {
    path: options.overridesFile,
    ...(options.runtimeConfigPeriodMs !== undefined ? { periodMs: options.runtimeConfigPeriodMs } : {}),
    ...(options.onOverridesReloadError ? { onReloadError: options.onOverridesReloadError } : {}),
  });
}

/**
 * Starts an in-memory server speaking Loki's push and query HTTP API with Loki 3.4's ingestion
 * rules and error bodies (see test/data/loki-contract for the captured behaviour it reproduces).
 */
export async function startLokiTestServer(options: LokiTestServerOptions = {}): Promise<LokiTestServer> {
  const host = options.host ?? "127.0.0.1";
  const store = new LogStore();
  const limits = new LimitsRegistry(options.overrides);
  const stopWatching = await watchOverrides(limits, options);
  const context: RouteContext = {
    store,
    limits,
    ingester: new Ingester(store, limits, {
      chunkIdlePeriodMs: options.chunkIdlePeriodMs ?? DEFAULT_CHUNK_IDLE_PERIOD_MS,
    }),
    faults: new FaultInjector(),
    queryIngestersWithinMs: options.queryIngestersWithinMs ?? 0,
  };
  const listener = restartableListener(host, context);
  const port = await listener.open(options.port ?? 0);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    async close() {
      stopWatching();
      await listener.close();
    },
    stop: listener.close,
    async restart() {
      if (!listener.isOpen()) await listener.open(port);
    },
    replayWal() {
      context.ingester.replayWal();
    },
    setFault(fault) {
      context.faults.set(fault);
    },
    setTenantLimits(tenant, tenantLimits) {
      limits.set(tenant, tenantLimits);
    },
  };
}
