import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError } from "./errors.ts";
import { defaultFaultBody, type FaultInjector } from "./faults.ts";
import type { Ingester } from "./ingest.ts";
import type { LimitsRegistry } from "./limits.ts";
import { runInstantQuery, runMetricRangeQuery } from "./metric-query.ts";
import { overridesMetricsText } from "./overrides-metrics.ts";
import {
  decodeContentEncoding,
  decodeJsonPush,
  decodeLegacyJsonPush,
  decodeProtobufPush,
  mediaType,
} from "./push-decode.ts";
import {
  labelNames,
  labelValues,
  parseInstantQuery,
  parseRangeQuery,
  runRangeQuery,
  series,
} from "./query.ts";
import type { LogStore } from "./store.ts";
import { msToNs, nowNs } from "./time-format.ts";

const TEXT = "text/plain; charset=utf-8";
/** Prometheus' text exposition format, as Loki serves `/metrics`. */
const METRICS_TEXT = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores";
const JSON_TYPE = "application/json; charset=UTF-8";

/** Version data of the Loki release whose HTTP behaviour this server reproduces. */
const BUILD_INFO = {
  version: "3.4.6",
  revision: "2b7b94ffbf",
  branch: "v3.4.6",
  buildUser: "",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "",
};

export interface RouteContext {
  store: LogStore;
  limits: LimitsRegistry;
  ingester: Ingester;
  faults: FaultInjector;
  /** Loki's `querier.query_ingesters_within`: entries older than this are not returned; 0 = all. */
  queryIngestersWithinMs: number;
}

function send(res: ServerResponse, status: number, contentType: string | undefined, body: string): void {
  const headers: Record<string, string | number> = { "Content-Length": Buffer.byteLength(body) };
  if (contentType) headers["Content-Type"] = contentType;
  res.writeHead(status, headers);
  res.end(body);
}

function sendJson(res: ServerResponse, value: unknown): void {
  send(res, 200, JSON_TYPE, JSON.stringify(value));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function tenantOf(req: IncomingMessage): string {
  const tenant = req.headers["x-scope-orgid"];
  if (typeof tenant !== "string" || tenant === "") throw new HttpError(401, "no org id\n");
  return tenant;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function handlePush(req: IncomingMessage, res: ServerResponse, context: RouteContext, legacy: boolean) {
  const fault = context.faults.next();
  if (fault.kind === "reset") {
    req.socket.destroy();
    return;
  }
  if (fault.kind === "latency") await sleep(fault.ms);
  const body = await readBody(req);
  if (fault.kind === "status") {
    send(res, fault.status, TEXT, fault.body ?? defaultFaultBody(fault.status));
    return;
  }
  const tenant = tenantOf(req);
  const decoded = await decodeContentEncoding(body, req.headers["content-encoding"]);
  const type = mediaType(req.headers["content-type"]);
  const streams =
    type === "application/json"
      ? legacy
        ? decodeLegacyJsonPush(decoded)
        : decodeJsonPush(decoded)
      : decodeProtobufPush(decoded);
  context.ingester.push(tenant, streams);
  res.writeHead(204);
  res.end();
}

async function queryParams(req: IncomingMessage, url: URL): Promise<URLSearchParams> {
  if (req.method !== "POST") return url.searchParams;
  const params = new URLSearchParams(url.searchParams);
  for (const [key, value] of new URLSearchParams((await readBody(req)).toString("utf8")))
    params.append(key, value);
  return params;
}

function queryOptions(context: RouteContext, tenant: string) {
  const within = context.queryIngestersWithinMs;
  return {
    discoverLogLevels: context.limits.get(tenant).discoverLogLevels,
    ...(within > 0 ? { queryableFrom: nowNs() - msToNs(within) } : {}),
  };
}

async function handleInstantQuery(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  context: RouteContext,
) {
  const tenant = tenantOf(req);
  const { expr, time } = parseInstantQuery(await queryParams(req, url));
  const result = runInstantQuery(context.store, tenant, expr, time, queryOptions(context, tenant));
  sendJson(res, { status: "success", data: { resultType: "vector", result, stats: { summary: {} } } });
}

async function handleQueryRange(req: IncomingMessage, res: ServerResponse, url: URL, context: RouteContext) {
  const tenant = tenantOf(req);
  const request = parseRangeQuery(await queryParams(req, url), context.limits, tenant);
  const options = queryOptions(context, tenant);
  if (request.parsed.kind === "metric") {
    const result = runMetricRangeQuery(context.store, tenant, request.parsed.expr, request, options);
    sendJson(res, { status: "success", data: { resultType: "matrix", result, stats: { summary: {} } } });
    return;
  }
  const flags = String(req.headers["x-loki-response-encoding-flags"] ?? "");
  const categorizeLabels = flags.split(",").some((flag) => flag.trim() === "categorize-labels");
  const result = runRangeQuery(
    context.store,
    tenant,
    { ...request, query: request.parsed.query },
    { ...options, categorizeLabels },
  );
  const entries = result.reduce((sum, stream) => sum + stream.values.length, 0);
  sendJson(res, {
    status: "success",
    data: {
      resultType: "streams",
      result,
      stats: { summary: { totalEntriesReturned: entries } },
      ...(categorizeLabels ? { encodingFlags: ["categorize-labels"] } : {}),
    },
  });
}

/** Routes one request; every error becomes Loki's status and plain-text body. */
export async function route(req: IncomingMessage, res: ServerResponse, context: RouteContext): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const path = url.pathname;
  const method = req.method ?? "GET";
  try {
    if (path === "/loki/api/v1/push" || path === "/api/prom/push") {
      if (method !== "POST") {
        res.writeHead(405, { "Content-Length": 0 });
        res.end();
        return;
      }
      await handlePush(req, res, context, path === "/api/prom/push");
      return;
    }
    if (path === "/ready") return send(res, 200, TEXT, "ready\n");
    if (path === "/metrics") return send(res, 200, METRICS_TEXT, overridesMetricsText(context.limits));
    if (path === "/loki/api/v1/status/buildinfo") {
      return send(res, 200, "application/json", `${JSON.stringify(BUILD_INFO)}\n`);
    }
    if (path === "/loki/api/v1/query_range") {
      await handleQueryRange(req, res, url, context);
      return;
    }
    if (path === "/loki/api/v1/query") {
      await handleInstantQuery(req, res, url, context);
      return;
    }
    if (path === "/loki/api/v1/labels" || path === "/loki/api/v1/label") {
      const names = labelNames(context.store, tenantOf(req), await queryParams(req, url));
      return sendJson(res, names.length > 0 ? { status: "success", data: names } : { status: "success" });
    }
    const valuesPath = /^\/loki\/api\/v1\/label\/([^/]+)\/values$/.exec(path);
    if (valuesPath) {
      const name = decodeURIComponent(valuesPath[1] as string);
      const values = labelValues(context.store, tenantOf(req), name, await queryParams(req, url));
      return sendJson(res, values.length > 0 ? { status: "success", data: values } : { status: "success" });
    }
    if (path === "/loki/api/v1/series") {
      const data = series(context.store, tenantOf(req), await queryParams(req, url));
      return sendJson(res, { status: "success", data });
    }
    send(res, 404, TEXT, "404 page not found\n");
  } catch (error) {
    if (error instanceof HttpError) {
      if (!res.headersSent) send(res, error.status, TEXT, error.body);
      return;
    }
    if (!res.headersSent) send(res, 500, TEXT, `${(error as Error).message}\n`);
  }
}
