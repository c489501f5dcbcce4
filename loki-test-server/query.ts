import { HttpError } from "./errors.ts";
import type { LimitsRegistry } from "./limits.ts";
import { type LabelMatcher, type LogQuery, parseLogQuery } from "./logql.ts";
import { type MetricExpr, maxRangeNs, type ParsedQuery, parseQuery } from "./metric-syntax.ts";
import { EntryLabels, parseGoFloat, runPipeline } from "./pipeline.ts";
import { type LogStore, lowerBound, type StoredEntry, type Stream } from "./store.ts";
import { msToNs, NS_PER_MS, nowNs, parseQueryTime } from "./time-format.ts";
import { formatGoDuration, formatModelDuration, parseDurationMs } from "./units.ts";

export type Direction = "forward" | "backward";

export interface RangeQuery {
  query: LogQuery;
  start: bigint;
  end: bigint;
  limit: number;
  direction: Direction;
}

/** A parsed query_range request: a log query or a metric query, with its time range and step. */
export interface QueryRangeRequest {
  parsed: ParsedQuery;
  start: bigint;
  end: bigint;
  limit: number;
  direction: Direction;
  step: bigint;
}

export interface StreamResult {
  stream: Record<string, string>;
  values: Array<
    | [string, string]
    | [string, string, { structuredMetadata?: Record<string, string>; parsed?: Record<string, string> }]
  >;
}

const DEFAULT_LIMIT = 100;
const HOUR_NS = 3_600_000n * NS_PER_MS;

function badQuery(message: string): HttpError {
  return new HttpError(400, message);
}

export function streamMatches(stream: Stream, matchers: readonly LabelMatcher[]): boolean {
  for (const matcher of matchers) {
    const pair = stream.labels.find(([name]) => name === matcher.name);
    if (!matcher.matches(pair ? pair[1] : "")) return false;
  }
  return true;
}

function parseTime(params: URLSearchParams, name: string, fallback: bigint): bigint {
  const raw = params.get(name);
  const value = parseQueryTime(raw, fallback);
  if (value === undefined)
    throw badQuery(`invalid parameter "${name}": cannot parse "${raw}" to a valid timestamp`);
  return value;
}

const NS_PER_S = 1000n * NS_PER_MS;
/** Loki refuses range queries with more points per series than this (loghttp). */
const MAX_POINTS = 11_000n;

/** Loki's `parseSecondsOrDuration`: a float is seconds, else a Prometheus duration ("2m"). */
function parseStepText(raw: string): bigint {
  const seconds = parseGoFloat(raw);
  if (typeof seconds === "number" && Number.isFinite(seconds)) return BigInt(Math.trunc(seconds * 1e9));
  try {
    return BigInt(parseDurationMs(raw, "step")) * NS_PER_MS;
  } catch {
    throw badQuery(`cannot parse ${JSON.stringify(raw)} to a valid duration`);
  }
}

/** The `step` of a range query, by default (end - start) / 250 in whole seconds (at least 1s). */
function parseStep(params: URLSearchParams, start: bigint, end: bigint): bigint {
  const raw = params.get("step");
  const step =
    raw === null || raw === ""
      ? BigInt(Math.max(Math.floor(Number((end - start) / NS_PER_S) / 250), 1)) * NS_PER_S
      : parseStepText(raw);
  if (step <= 0n) {
    throw badQuery("zero or negative query resolution step widths are not accepted. Try a positive integer");
  }
  if ((end - start) / step > MAX_POINTS) {
    throw badQuery(
      "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter",
    );
  }
  return step;
}

/** Loki's `max_query_length`: the time range plus the longest range of a metric query. */
function checkQueryLength(parsed: ParsedQuery, start: bigint, end: bigint, maxQueryLengthMs: number): void {
  const rangeNs = parsed.kind === "metric" ? maxRangeNs(parsed.expr) : 0n;
  const lengthMs = Number((end - start + rangeNs) / NS_PER_MS);
  if (maxQueryLengthMs > 0 && lengthMs > maxQueryLengthMs) {
    throw badQuery(
      `the query time range exceeds the limit (query length: ${formatGoDuration(lengthMs)}, ` +
        `limit: ${formatModelDuration(maxQueryLengthMs)})`,
    );
  }
}

/**
 * Parses query_range parameters in the order and with the messages of Loki's `loghttp` and its
 * limits middleware.
 */
export function parseRangeQuery(
  params: URLSearchParams,
  limits: LimitsRegistry,
  tenant: string,
): QueryRangeRequest {
  const now = nowNs();
  const end = parseTime(params, "end", now);
  const start = parseTime(params, "start", end - HOUR_NS);
  const limitText = params.get("limit");
  const limit = limitText === null || limitText === "" ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit))
    throw badQuery(`invalid parameter "limit": cannot parse "${limitText}" as integer`);
  if (limit <= 0) throw badQuery("limit must be a positive value");
  const directionText = (params.get("direction") ?? "backward").toLowerCase() || "backward";
  if (directionText !== "forward" && directionText !== "backward") {
    throw badQuery(`invalid direction '${params.get("direction")}'`);
  }
  const step = parseStep(params, start, end);
  if (end <= start) throw badQuery("end timestamp must not be before or equal to start time");
  const parsed = parseQuery(params.get("query") ?? "");
  const tenantLimits = limits.get(tenant);
  if (limit > tenantLimits.maxEntriesLimitPerQuery) {
    throw badQuery(
      `max entries limit per query exceeded, limit > max_entries_limit_per_query (${limit} > ${tenantLimits.maxEntriesLimitPerQuery})`,
    );
  }
  checkQueryLength(parsed, start, end, tenantLimits.maxQueryLengthMs);
  return { parsed, start, end, limit, direction: directionText, step };
}

/** Parses `/loki/api/v1/query` parameters; Loki 3 answers only metric queries there. */
export function parseInstantQuery(params: URLSearchParams): { expr: MetricExpr; time: bigint } {
  const time = parseTime(params, "time", nowNs());
  const parsed = parseQuery(params.get("query") ?? "");
  if (parsed.kind === "log") {
    throw badQuery(
      "log queries are not supported as an instant query type, please change your query to a range query type",
    );
  }
  return { expr: parsed.expr, time };
}

/** Entries of the matching streams in [from, to), each stream's own order by time. */
export function* entriesInRange(
  store: LogStore,
  tenant: string,
  matchers: readonly LabelMatcher[],
  from: bigint,
  to: bigint,
): Generator<{ stream: Stream; entries: readonly StoredEntry[]; first: number; last: number }> {
  for (const stream of store.streamsOf(tenant)) {
    if (!streamMatches(stream, matchers)) continue;
    const entries = stream.entries;
    yield { stream, entries, first: lowerBound(entries, from), last: lowerBound(entries, to) };
  }
}

/** The entries of each stream that pass the pipeline, up to `limit` per stream, in query direction. */
function candidatesOf(
  store: LogStore,
  tenant: string,
  request: RangeQuery,
  from: bigint,
  discoverLogLevels: boolean,
): EntryLabels[] {
  const backward = request.direction === "backward";
  const candidates: EntryLabels[] = [];
  for (const { stream, entries, first, last } of entriesInRange(
    store,
    tenant,
    request.query.matchers,
    from,
    request.end,
  )) {
    let taken = 0;
    for (let k = 0; k < last - first && taken < request.limit; k++) {
      const entry = entries[backward ? last - 1 - k : first + k] as StoredEntry;
      const labels = new EntryLabels(stream, entry, discoverLogLevels);
      if (!runPipeline(request.query.pipeline, labels)) continue;
      candidates.push(labels);
      taken++;
    }
  }
  // Stable sort keeps the per-stream order of entries with equal timestamps.
  candidates.sort((a, b) => (a.entry.ts === b.entry.ts ? 0 : a.entry.ts < b.entry.ts === backward ? 1 : -1));
  return candidates;
}

/**
 * Runs a log query over the store. Entries come newest first (backward) or oldest first
 * (forward), `limit` over all streams; start inclusive, end exclusive. Like Loki's default
 * encoding, structured metadata (incl. detected_level) is merged into the stream labels, which
 * splits a stream; with `categorizeLabels` it is returned as a third value element instead.
 */
export function runRangeQuery(
  store: LogStore,
  tenant: string,
  request: RangeQuery,
  options: { discoverLogLevels: boolean; categorizeLabels: boolean; queryableFrom?: bigint },
): StreamResult[] {
  const from =
    options.queryableFrom !== undefined && options.queryableFrom > request.start
      ? options.queryableFrom
      : request.start;
  const candidates = candidatesOf(store, tenant, request, from, options.discoverLogLevels);
  const results = new Map<string, StreamResult>();
  for (const candidate of candidates.slice(0, request.limit)) {
    const labels = options.categorizeLabels ? candidate.stream.labels : candidate.all();
    const key = options.categorizeLabels ? candidate.stream.key : JSON.stringify(labels);
    let result = results.get(key);
    if (!result) {
      result = { stream: Object.fromEntries(labels), values: [] };
      results.set(key, result);
    }
    const ts = candidate.entry.ts.toString();
    const categories = {
      ...(candidate.metadata.length > 0
        ? { structuredMetadata: Object.fromEntries(candidate.metadata) }
        : {}),
      ...(candidate.parsed.length > 0 ? { parsed: Object.fromEntries(candidate.parsed) } : {}),
    };
    if (options.categorizeLabels && Object.keys(categories).length > 0) {
      result.values.push([ts, candidate.entry.line, categories]);
    } else {
      result.values.push([ts, candidate.entry.line]);
    }
  }
  return [...results.values()];
}

/** Streams of a tenant that have an entry in [start, end] (what Loki's index would list). */
function streamsInRange(store: LogStore, tenant: string, params: URLSearchParams): Stream[] {
  const now = nowNs();
  const end = parseTime(params, "end", now);
  const start = parseTime(params, "start", end - msToNs(6 * 3_600_000));
  const streams: Stream[] = [];
  for (const stream of store.streamsOf(tenant)) {
    const first = lowerBound(stream.entries, start);
    const entry = stream.entries[first];
    if (entry && entry.ts <= end) streams.push(stream);
  }
  return streams;
}

function matchersOf(params: URLSearchParams, name: string): LabelMatcher[][] {
  return params.getAll(name).map((selector) => parseLogQuery(selector).matchers);
}

/** `/loki/api/v1/labels`: label names of the streams in range, sorted (no structured metadata). */
export function labelNames(store: LogStore, tenant: string, params: URLSearchParams): string[] {
  const selectors = matchersOf(params, "query");
  const names = new Set<string>();
  for (const stream of streamsInRange(store, tenant, params)) {
    if (selectors.length > 0 && !selectors.some((m) => streamMatches(stream, m))) continue;
    for (const [name] of stream.labels) names.add(name);
  }
  return [...names].sort();
}

/** `/loki/api/v1/label/<name>/values`. */
export function labelValues(
  store: LogStore,
  tenant: string,
  name: string,
  params: URLSearchParams,
): string[] {
  const selectors = matchersOf(params, "query");
  const values = new Set<string>();
  for (const stream of streamsInRange(store, tenant, params)) {
    if (selectors.length > 0 && !selectors.some((m) => streamMatches(stream, m))) continue;
    const pair = stream.labels.find(([n]) => n === name);
    if (pair) values.add(pair[1]);
  }
  return [...values].sort();
}

/** `/loki/api/v1/series`: label sets of the streams matching any `match[]` selector. */
export function series(
  store: LogStore,
  tenant: string,
  params: URLSearchParams,
): Array<Record<string, string>> {
  const selectors = matchersOf(params, "match[]");
  if (selectors.length === 0) throw badQuery("0 matchers provided");
  return streamsInRange(store, tenant, params)
    .filter((stream) => selectors.some((m) => streamMatches(stream, m)))
    .map((stream) => Object.fromEntries(stream.labels));
}
