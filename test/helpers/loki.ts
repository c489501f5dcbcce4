import { randomBytes } from "node:crypto";
import { eventNanoseconds } from "../../functions/core/delivery/timestamps.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import {
  type Fault,
  type LokiTestServer,
  type LokiTestServerOptions,
  startLokiTestServer,
  type TenantLimits,
} from "../../loki-test-server/index.ts";

/**
 * Tests run against the in-process Loki test server, or against a real Loki when LOKI_TEST_URL
 * is set (tenant from LOKI_TEST_TENANT, else a unique one). Faults, stop/restart and limits
 * only exist on the test server: tests that need them skip themselves on an external Loki.
 */
export const externalLoki = Boolean(process.env.LOKI_TEST_URL);

/** Why fault tests are skipped against an external Loki (for `it.skipIf(externalLoki)`). */
export const EXTERNAL_LOKI_SKIP_REASON =
  "needs the Loki test server (LOKI_TEST_URL points at an external Loki)";

export class ExternalLokiError extends Error {
  constructor(operation: string, url: string) {
    super(
      `${operation} is only possible on the Loki test server, not on the external Loki at ${url} ` +
        "(LOKI_TEST_URL is set); skip this test with it.skipIf(externalLoki)",
    );
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

export interface TestLoki extends LokiTestServer {
  /** A tenant (X-Scope-OrgID) of this test only. */
  tenant: string;
  /** True for a real Loki given by LOKI_TEST_URL. */
  external: boolean;
  queryRange(query: string, options: QueryRangeOptions): Promise<LokiStream[]>;
  /** All entries in [start, end), oldest first, paging over Loki's entries limit. */
  queryRangeAll(
    query: string,
    options: Omit<QueryRangeOptions, "limit" | "direction">,
  ): Promise<LokiStream[]>;
}

export interface TestLokiOptions extends LokiTestServerOptions {
  /** Limits of this test's own tenant. */
  limits?: Partial<TenantLimits>;
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
  const response = await fetch(target, { headers: { "X-Scope-OrgID": tenant } });
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

function externalHandle(url: string, options: TestLokiOptions): TestLoki {
  if (options.limits || options.overrides) throw new ExternalLokiError("setting tenant limits", url);
  const tenant = process.env.LOKI_TEST_TENANT || uniqueTenant();
  const refuse = (operation: string) => () => {
    throw new ExternalLokiError(operation, url);
  };
  return {
    url: url.replace(/\/$/, ""),
    port: Number(new URL(url).port || 80),
    tenant,
    external: true,
    close: async () => {},
    stop: refuse("stop()"),
    restart: refuse("restart()"),
    setFault: refuse("setFault()") as (fault?: Fault) => void,
    setTenantLimits: refuse("setTenantLimits()"),
    queryRange: (query, queryOptions) => queryRange(url, tenant, query, queryOptions),
    queryRangeAll: (query, queryOptions) => queryRangeAll(url, tenant, query, queryOptions),
  };
}

/** A Loki for one test file: the in-process test server, or the external Loki of LOKI_TEST_URL. */
export async function startTestLoki(options: TestLokiOptions = {}): Promise<TestLoki> {
  const externalUrl = process.env.LOKI_TEST_URL;
  if (externalUrl) return externalHandle(externalUrl, options);
  const { limits, ...serverOptions } = options;
  const server = await startLokiTestServer(serverOptions);
  const tenant = uniqueTenant();
  if (limits) server.setTenantLimits(tenant, limits);
  return {
    url: server.url,
    port: server.port,
    tenant,
    external: false,
    close: () => server.close(),
    stop: () => server.stop(),
    restart: () => server.restart(),
    setFault: (fault) => server.setFault(fault),
    setTenantLimits: (otherTenant, tenantLimits) => server.setTenantLimits(otherTenant, tenantLimits),
    queryRange: (query, queryOptions) => queryRange(server.url, tenant, query, queryOptions),
    queryRangeAll: (query, queryOptions) => queryRangeAll(server.url, tenant, query, queryOptions),
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
  const response = await fetch(url, { headers: { "X-Scope-OrgID": target.tenant } });
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
