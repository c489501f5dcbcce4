import { HttpError } from "./errors.ts";
import type { LabelPairs } from "./labels.ts";
import { detectLevel } from "./level-detection.ts";
import type { LimitsRegistry } from "./limits.ts";
import { type LabelMatcher, type LogQuery, lineFilterPasses, parseLogQuery } from "./logql.ts";
import { type LogStore, lowerBound, type StoredEntry, type Stream } from "./store.ts";
import { msToNs, NS_PER_MS, nowNs, parseQueryTime } from "./time-format.ts";
import { formatGoDuration, formatModelDuration } from "./units.ts";

export type Direction = "forward" | "backward";

export interface RangeQuery {
  query: LogQuery;
  start: bigint;
  end: bigint;
  limit: number;
  direction: Direction;
}

export interface StreamResult {
  stream: Record<string, string>;
  values: Array<[string, string] | [string, string, { structuredMetadata: Record<string, string> }]>;
}

const DEFAULT_LIMIT = 100;
const HOUR_NS = 3_600_000n * NS_PER_MS;

function badQuery(message: string): HttpError {
  return new HttpError(400, message);
}

function streamMatches(stream: Stream, matchers: readonly LabelMatcher[]): boolean {
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

/**
 * Parses query_range parameters in the order and with the messages of Loki's `loghttp` and its
 * limits middleware.
 */
export function parseRangeQuery(params: URLSearchParams, limits: LimitsRegistry, tenant: string): RangeQuery {
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
  if (end <= start) throw badQuery("end timestamp must not be before or equal to start time");
  const query = parseLogQuery(params.get("query") ?? "");
  const tenantLimits = limits.get(tenant);
  if (limit > tenantLimits.maxEntriesLimitPerQuery) {
    throw badQuery(
      `max entries limit per query exceeded, limit > max_entries_limit_per_query (${limit} > ${tenantLimits.maxEntriesLimitPerQuery})`,
    );
  }
  const lengthMs = Number((end - start) / NS_PER_MS);
  if (tenantLimits.maxQueryLengthMs > 0 && lengthMs > tenantLimits.maxQueryLengthMs) {
    throw badQuery(
      `the query time range exceeds the limit (query length: ${formatGoDuration(lengthMs)}, ` +
        `limit: ${formatModelDuration(tenantLimits.maxQueryLengthMs)})`,
    );
  }
  return { query, start, end, limit, direction: directionText };
}

interface Candidate {
  stream: Stream;
  entry: StoredEntry;
  metadata: LabelPairs;
}

function metadataOf(stream: Stream, entry: StoredEntry, discoverLogLevels: boolean): LabelPairs {
  const metadata: LabelPairs = entry.metadata ? [...entry.metadata] : [];
  if (discoverLogLevels && !metadata.some(([name]) => name === "detected_level")) {
    metadata.push(["detected_level", detectLevel(stream.labels, entry.metadata, entry.line)]);
    metadata.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
  return metadata;
}

function passesPipeline(
  query: LogQuery,
  stream: Stream,
  entry: StoredEntry,
  metadata: () => LabelPairs,
): boolean {
  for (const stage of query.pipeline) {
    if (stage.kind === "line") {
      if (!lineFilterPasses(stage, entry.line)) return false;
    } else {
      const name = stage.matcher.name;
      const found = metadata().find(([n]) => n === name) ?? stream.labels.find(([n]) => n === name);
      if (!stage.matcher.matches(found ? found[1] : "")) return false;
    }
  }
  return true;
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
  const backward = request.direction === "backward";
  const candidates: Candidate[] = [];
  for (const stream of store.streamsOf(tenant)) {
    if (!streamMatches(stream, request.query.matchers)) continue;
    const entries = stream.entries;
    const first = lowerBound(entries, from);
    const last = lowerBound(entries, request.end); // exclusive
    let taken = 0;
    for (let k = 0; k < last - first && taken < request.limit; k++) {
      const entry = entries[backward ? last - 1 - k : first + k] as StoredEntry;
      let metadata: LabelPairs | undefined;
      const getMetadata = () => {
        metadata ??= metadataOf(stream, entry, options.discoverLogLevels);
        return metadata;
      };
      if (!passesPipeline(request.query, stream, entry, getMetadata)) continue;
      candidates.push({ stream, entry, metadata: getMetadata() });
      taken++;
    }
  }
  // Stable sort keeps the per-stream order of entries with equal timestamps.
  candidates.sort((a, b) => (a.entry.ts === b.entry.ts ? 0 : a.entry.ts < b.entry.ts === backward ? 1 : -1));
  const results = new Map<string, StreamResult>();
  for (const candidate of candidates.slice(0, request.limit)) {
    const labels = options.categorizeLabels
      ? candidate.stream.labels
      : [...candidate.stream.labels, ...candidate.metadata].sort((a, b) =>
          a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
        );
    const key = options.categorizeLabels ? candidate.stream.key : JSON.stringify(labels);
    let result = results.get(key);
    if (!result) {
      result = { stream: Object.fromEntries(labels), values: [] };
      results.set(key, result);
    }
    const ts = candidate.entry.ts.toString();
    if (options.categorizeLabels && candidate.metadata.length > 0) {
      result.values.push([
        ts,
        candidate.entry.line,
        { structuredMetadata: Object.fromEntries(candidate.metadata) },
      ]);
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
