import { randomBytes } from "node:crypto";
import { stringify } from "yaml";
import { eventNanoseconds } from "../../functions/core/delivery/timestamps.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import {
  type LokiTestServerOptions,
  parseOverrides,
  startLokiTestServer,
} from "../../loki-test-server/index.ts";
import { parseDurationMs } from "../../loki-test-server/units.ts";
import { type ProxyFault, startLokiFaultProxy } from "./loki-fault-proxy.ts";
import { type LokiLimits, waitForTenantOverrides, writeTenantOverrides } from "./loki-overrides.ts";

/**
 * Tests run against the in-process Loki test server, or against any Loki given by LOKI_TEST_URL
 * (tenant from LOKI_TEST_TENANT, else a unique one). Either way the shipper talks to it through a
 * fault-injecting proxy (loki-fault-proxy.ts), so outage, 429 and slow-Loki tests run unchanged
 * against a real Loki. Tenant limits go through Loki's runtime-overrides file (LOKI_TEST_OVERRIDES).
 */
export const externalLoki = Boolean(process.env.LOKI_TEST_URL);

/** True when tenant limits cannot be set: an external Loki without LOKI_TEST_OVERRIDES. */
export const noTenantLimits = externalLoki && !process.env.LOKI_TEST_OVERRIDES;

/** Why tests that set tenant limits are skipped (it.skipIf(noTenantLimits)). */
export const NO_TENANT_LIMITS_REASON =
  "sets a tenant limit: needs LOKI_TEST_OVERRIDES, the runtime-overrides file of the Loki at LOKI_TEST_URL";

/** Why tests that need test-server internals are skipped against an external Loki (it.skipIf(externalLoki)). */
export const EXTERNAL_LOKI_SKIP_REASON =
  "needs the Loki test server (LOKI_TEST_URL points at an external Loki)";

/**
 * Why a test that needs these Loki settings cannot run against the external Loki, or undefined
 * when it can: the in-process server takes them as options, an external Loki must have been
 * started with them and say so through LOKI_TEST_CHUNK_IDLE_PERIOD and
 * LOKI_TEST_QUERY_INGESTERS_WITHIN (scripts/real-loki.ts sets both).
 */
export function externalLokiLacks(needs: {
  chunkIdlePeriodMs?: number;
  queryIngestersWithinMs?: number;
}): string | undefined {
  if (!externalLoki) return undefined;
  const told = (name: string) => {
    const value = process.env[name];
    return value ? parseDurationMs(value, name) : undefined;
  };
  const lacking: string[] = [];
  if (
    needs.chunkIdlePeriodMs !== undefined &&
    told("LOKI_TEST_CHUNK_IDLE_PERIOD") !== needs.chunkIdlePeriodMs
  ) {
    lacking.push(`chunk_idle_period ${needs.chunkIdlePeriodMs} ms (LOKI_TEST_CHUNK_IDLE_PERIOD)`);
  }
  if (
    needs.queryIngestersWithinMs !== undefined &&
    told("LOKI_TEST_QUERY_INGESTERS_WITHIN") !== needs.queryIngestersWithinMs
  ) {
    lacking.push(
      `query_ingesters_within ${needs.queryIngestersWithinMs} ms (LOKI_TEST_QUERY_INGESTERS_WITHIN)`,
    );
  }
  return lacking.length > 0 ? `needs a Loki with ${lacking.join(" and ")}` : undefined;
}

export class ExternalLokiError extends Error {
  constructor(operation: string, url: string) {
    super(`${operation} is not possible on the external Loki at ${url} (LOKI_TEST_URL is set)`);
    this.name = "ExternalLokiError";
  }
}

export type LokiValue = [string, string] | [string, string, Record<string, unknown>];

export interface LokiStream {
  stream: Record<string, string>;
  values: LokiValue[];
}

export interface QueryRangeOptions {
  /** Inclusive, ns. */
  start: bigint;
  /** Exclusive, ns. */
  end: bigint;
  /** Default 100 like Loki; at most 5000 with Loki's default limits. */
  limit?: number;
  /** Default "backward" like Loki. */
  direction?: "forward" | "backward";
}

export interface TestLoki {
  /** Where the code under test pushes: the fault proxy in front of Loki. */
  url: string;
  /** Loki itself, for queries that must work while the proxy plays "Loki down". */
  lokiUrl: string;
  /** A tenant (X-Scope-OrgID) of this test only. */
  tenant: string;
  /** True for a real Loki given by LOKI_TEST_URL. */
  external: boolean;
  close(): Promise<void>;
  /** Loki down: connections to `url` are refused (and open ones dropped) until restart(). */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** A fault for the pushes through `url` (none clears it). */
  setFault(fault?: ProxyFault): void;
  /** Pushes through `url` that Loki answered with 2xx. */
  readonly acceptedPushes: number;
  /** Pushes through `url` held back by a `latency` fault right now. */
  readonly heldPushes: number;
  /**
   * A crash: on a real Loki (started by scripts/real-loki.ts) kill -9 and a restart that replays the
   * WAL; on the test server its held streams' entries count as pushed now, as a WAL replay does.
   */
  crashAndRestart(): Promise<void>;
  /** Adds limits (Loki's names) to a tenant's runtime overrides, and waits until Loki applies them. */
  setTenantLimits(tenant: string, limits: LokiLimits): Promise<void>;
  queryRange(query: string, options: QueryRangeOptions): Promise<LokiStream[]>;
  /** All entries in [start, end), oldest first, paging over Loki's entries limit. */
  queryRangeAll(
    query: string,
    options: Omit<QueryRangeOptions, "limit" | "direction">,
  ): Promise<LokiStream[]>;
}

export interface TestLokiOptions extends LokiTestServerOptions {
  /** Limits of this test's own tenant, under Loki's names (`max_line_size: 1000`). */
  limits?: LokiLimits;
}

/**
 * A query to Loki, sent once more when the connection was reset: a kept-alive connection that
 * Loki closed just as the request went out (seen on a loaded machine with every test file querying
 * one standalone Loki). Queries are idempotent, so the second try is safe.
 */
async function getFromLoki(url: URL, tenant: string): Promise<Response> {
  const get = () => fetch(url, { headers: { "X-Scope-OrgID": tenant } });
  try {
    return await get();
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code !== "ECONNRESET") throw error;
    return get();
  }
}

/** `GET /loki/api/v1/query_range`, returning the streams of a successful answer. */
export async function queryRange(
  url: string,
  tenant: string,
  query: string,
  options: QueryRangeOptions,
): Promise<LokiStream[]> {
  const target = new URL("/loki/api/v1/query_range", url);
  target.searchParams.set("query", query);
  target.searchParams.set("start", options.start.toString());
  target.searchParams.set("end", options.end.toString());
  target.searchParams.set("limit", String(options.limit ?? 100));
  target.searchParams.set("direction", options.direction ?? "backward");
  const response = await getFromLoki(target, tenant);
  const body = await response.text();
  if (response.status !== 200) {
    throw new Error(`query_range ${query} failed with HTTP ${response.status}: ${body.slice(0, 1024)}`);
  }
  const parsed = JSON.parse(body) as { status: string; data: { resultType: string; result: LokiStream[] } };
  if (parsed.status !== "success" || parsed.data.resultType !== "streams") {
    throw new Error(`query_range ${query} did not return streams: ${body.slice(0, 1024)}`);
  }
  return parsed.data.result;
}

const PAGE_SIZE = 5000;

/**
 * Every entry in [start, end), oldest first, merged per label set. Pages forward from the newest
 * timestamp seen (inclusive) and drops what was already returned, so entries sharing a timestamp
 * across a page boundary are neither lost nor doubled.
 */
export async function queryRangeAll(
  url: string,
  tenant: string,
  query: string,
  options: Omit<QueryRangeOptions, "limit" | "direction">,
): Promise<LokiStream[]> {
  const streams = new Map<string, LokiStream>();
  const seen = new Set<string>();
  let start = options.start;
  for (;;) {
    const page = await queryRange(url, tenant, query, {
      ...options,
      start,
      limit: PAGE_SIZE,
      direction: "forward",
    });
    let count = 0;
    let newest = start;
    let added = 0;
    const pageEntries: Array<{ key: string; stream: Record<string, string>; value: LokiValue }> = [];
    for (const stream of page) {
      const key = JSON.stringify(Object.entries(stream.stream).sort());
      for (const value of stream.values) {
        count++;
        const ts = BigInt(value[0]);
        if (ts > newest) newest = ts;
        pageEntries.push({ key, stream: stream.stream, value });
      }
    }
    pageEntries.sort((a, b) => {
      const left = BigInt(a.value[0]);
      const right = BigInt(b.value[0]);
      return left === right ? 0 : left < right ? -1 : 1;
    });
    for (const { key, stream, value } of pageEntries) {
      const identity = `${key}\u0000${value[0]}\u0000${value[1]}`;
      if (seen.has(identity)) continue;
      seen.add(identity);
      added++;
      let merged = streams.get(key);
      if (!merged) {
        merged = { stream, values: [] };
        streams.set(key, merged);
      }
      merged.values.push(value);
    }
    if (count < PAGE_SIZE) break;
    if (added === 0) {
      throw new Error(`more than ${PAGE_SIZE} entries share timestamp ${newest}: cannot page through them`);
    }
    start = newest;
  }
  return [...streams.values()];
}

function uniqueTenant(): string {
  return `test-${randomBytes(6).toString("hex")}`;
}

/** The Loki behind the proxy: how to set a tenant's limits on it, and how to free it. */
interface LokiBackend {
  url: string;
  external: boolean;
  setTenantLimits(tenant: string, limits: LokiLimits): Promise<void>;
  crashAndRestart(): Promise<void>;
  close(): Promise<void>;
}

function externalBackend(url: string, options: TestLokiOptions): LokiBackend {
  if (options.overrides) throw new ExternalLokiError("starting with test-server overrides", url);
  const overridesFile = process.env.LOKI_TEST_OVERRIDES;
  return {
    url: url.replace(/\/$/, ""),
    external: true,
    async setTenantLimits(tenant, limits) {
      if (!overridesFile) {
        throw new ExternalLokiError(
          "setting tenant limits without LOKI_TEST_OVERRIDES (Loki's runtime-overrides file)",
          url,
        );
      }
      await writeTenantOverrides(overridesFile, tenant, limits);
      await waitForTenantOverrides(url, tenant, limits);
    },
    crashAndRestart: () => crashExternalLoki(url),
    close: async () => {},
  };
}

/**
 * Kills the external Loki and waits until it is back: the process that started it (scripts/real-loki.ts,
 * LOKI_TEST_RESTART_PID) restarts it on SIGUSR2; a new process has a later process_start_time_seconds.
 */
async function crashExternalLoki(url: string): Promise<void> {
  const supervisor = Number(process.env.LOKI_TEST_RESTART_PID);
  if (!supervisor) throw new ExternalLokiError("a crash and restart without LOKI_TEST_RESTART_PID", url);
  const startedAt = async () => {
    try {
      const metrics = await (await fetch(new URL("/metrics", url))).text();
      return Number(/^process_start_time_seconds (\S+)$/m.exec(metrics)?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  const before = await startedAt();
  process.kill(supervisor, "SIGUSR2");
  const giveUpAt = Date.now() + 60_000;
  while (Date.now() < giveUpAt) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    if (
      (await startedAt()) > before &&
      (await fetch(new URL("/ready", url)).catch(() => undefined))?.status === 200
    ) {
      return;
    }
  }
  throw new Error(`Loki at ${url} was not back within 60 s of the kill`);
}

/**
 * Loki's default `querier.query_ingesters_within`: a real Loki does not return just-pushed entries
 * older than this until it flushes them. The in-process server hides them too, so that a test whose
 * data is too old for a real Loki fails here first.
 */
const QUERY_INGESTERS_WITHIN_MS = 3 * 3_600_000;

async function inProcessBackend(options: TestLokiOptions): Promise<LokiBackend> {
  const { limits: _ownLimits, ...serverOptions } = options;
  const server = await startLokiTestServer({
    queryIngestersWithinMs: QUERY_INGESTERS_WITHIN_MS,
    ...serverOptions,
  });
  return {
    url: server.url,
    external: false,
    // The same format as the overrides file, read by the test server's own parser.
    setTenantLimits: async (tenant, limits) => {
      const parsed = parseOverrides(stringify({ overrides: { [tenant]: limits } }), "test limits");
      server.setTenantLimits(tenant, parsed[tenant] ?? {});
    },
    // The store and the stream rates stay, and the held streams' entries count as pushed now.
    crashAndRestart: async () => server.replayWal(),
    close: () => server.close(),
  };
}

/**
 * A Loki for one test file, behind a fault proxy: the in-process test server, or the external
 * Loki of LOKI_TEST_URL.
 */
export async function startTestLoki(options: TestLokiOptions = {}): Promise<TestLoki> {
  const externalUrl = process.env.LOKI_TEST_URL;
  const backend = externalUrl ? externalBackend(externalUrl, options) : await inProcessBackend(options);
  const proxy = await startLokiFaultProxy(backend.url);
  const tenant = (externalUrl && process.env.LOKI_TEST_TENANT) || uniqueTenant();
  if (options.limits) await backend.setTenantLimits(tenant, options.limits);
  return {
    url: proxy.url,
    lokiUrl: backend.url,
    tenant,
    external: backend.external,
    close: async () => {
      await proxy.close();
      await backend.close();
    },
    stop: () => proxy.down(),
    restart: () => proxy.up(),
    setFault: (fault) => proxy.setFault(fault),
    get acceptedPushes() {
      return proxy.acceptedPushes;
    },
    get heldPushes() {
      return proxy.heldPushes;
    },
    setTenantLimits: (otherTenant, limits) => backend.setTenantLimits(otherTenant, limits),
    crashAndRestart: () => backend.crashAndRestart(),
    queryRange: (query, queryOptions) => queryRange(backend.url, tenant, query, queryOptions),
    queryRangeAll: (query, queryOptions) => queryRangeAll(backend.url, tenant, query, queryOptions),
  };
}

/** One entry as Loki returns it, with the labels of its stream. */
export interface LokiEntry {
  ns: bigint;
  line: string;
  labels: Record<string, string>;
}

/** Every entry of one tenant matching `selector` in `[startMs, endMs)`, oldest first. */
export async function lokiEntries(
  target: { url: string; tenant: string },
  selector: string,
  startMs: number,
  endMs: number,
): Promise<LokiEntry[]> {
  const streams = await queryRangeAll(target.url, target.tenant, selector, {
    start: BigInt(startMs) * 1_000_000n,
    end: BigInt(endMs) * 1_000_000n,
  });
  return streams
    .flatMap((stream) => stream.values.map(([ns, line]) => ({ ns: BigInt(ns), line, labels: stream.stream })))
    .sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
}

/** `<ns> <line>` of each entry, sorted: the identity Loki de-duplicates on. */
export function entryKeys(entries: LokiEntry[]): string[] {
  return entries.map((entry) => `${entry.ns} ${entry.line}`).sort();
}

/** `<ns> <line>` of every event, as Loki must hold it (see entryKeys). */
export function expectedEntries(events: LogEvent[]): string[] {
  return events.map((event) => `${eventNanoseconds(event.timestamp, event.id)} ${event.message}`).sort();
}

/** The shipper's and workflows' Loki settings for this test's tenant. */
export function lokiEnv(loki: { url: string; tenant: string }): Record<string, string> {
  return { LOKI_URL: loki.url, LOKI_TENANT: loki.tenant };
}

/** One series of an instant metric query: its labels and its value as Loki prints it. */
export interface InstantSample {
  metric: Record<string, string>;
  value: string;
}

/** `GET /loki/api/v1/query` (an instant metric query) at `timeMs`, returning the vector. */
export async function instantQuery(
  target: { url: string; tenant: string },
  query: string,
  timeMs: number,
): Promise<InstantSample[]> {
  const url = new URL("/loki/api/v1/query", target.url);
  url.searchParams.set("query", query);
  url.searchParams.set("time", (BigInt(timeMs) * 1_000_000n).toString());
  const response = await getFromLoki(url, target.tenant);
  const body = await response.text();
  if (response.status !== 200) {
    throw new Error(`query ${query} failed with HTTP ${response.status}: ${body.slice(0, 1024)}`);
  }
  const parsed = JSON.parse(body) as {
    data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (parsed.data.resultType !== "vector") throw new Error(`query ${query} did not return a vector: ${body}`);
  return parsed.data.result.map((series) => ({ metric: series.metric, value: series.value[1] }));
}
