import got, { RequestError } from "got";
import { LokiShipperError } from "../errors.ts";
import { formatLabels } from "./label-text.ts";
import { cutBody } from "./loki-errors.ts";
import type { PushStream } from "./loki-push.ts";

/**
 * Which entries of a push Loki already holds, in the stream or in any of its shards.
 *
 * Loki shards a stream whose rate (plus the push) is over the tenant's
 * `shard_streams.desired_rate` (on by default, 1536KB), and after a restart: it adds
 * `__stream_shard__` and deals a push's entries round-robin over the shards. Its de-duplication
 * of identical entries works within one stream only, so an event pushed again (a retry, a
 * duplicate delivery, a drain of a partly stored chunk, a backfill over live data) can land in
 * another shard and be stored twice. Asking first, and pushing only what is not there, keeps
 * each event once whatever Loki does with the shards. The query's stream selector matches the
 * shards too (they carry the stream's labels and one more).
 */
export interface StoredEntriesReader {
  /** Keys (`entryKey`) of the entries of `stream` that Loki already holds. */
  storedKeys(stream: PushStream, options: StoredLookupOptions): Promise<Set<string>>;
}

export interface StoredLookupOptions {
  tenant?: string;
  timeoutMs: number;
  /**
   * Every entry's `log_stream` structured metadata, when they share one: the query then reads only
   * that CloudWatch log stream's entries of the time range, not the whole group's.
   */
  logStream?: string;
}

/** An entry's identity in Loki: stream aside, its nanosecond timestamp and line. */
export function entryKey(ns: bigint | string, line: string): string {
  return `${ns}\u0000${line}`;
}

/** Loki's default `max_entries_limit_per_query`: the largest page a query may ask for. */
const PAGE_LIMIT = 5000;
/** Labels Loki adds to a stream: the shard, and service_name when the pusher sets none. */
const SHARD_LABEL = "__stream_shard__";
const SERVICE_NAME = "service_name";

export class StoredLookupError extends LokiShipperError {}

interface QueryStream {
  stream: Record<string, string>;
  values: [string, string, ...unknown[]][];
}

export function createStoredEntriesReader(options: {
  /** The push URL: the query goes to `query_range` beside it. */
  pushUrl: string;
  headers: Record<string, string>;
  requestTimeoutMs: number;
}): StoredEntriesReader {
  const queryUrl = options.pushUrl.replace(/\/(loki\/api\/v1|api\/prom)\/push$/, "/loki/api/v1/query_range");
  return {
    async storedKeys(stream, lookup) {
      if (stream.entries.length === 0) return new Set();
      let start = stream.entries[0]?.ns ?? 0n;
      let end = start;
      for (const entry of stream.entries) {
        if (entry.ns < start) start = entry.ns;
        if (entry.ns > end) end = entry.ns;
      }
      const query = `${formatLabels(stream.labels)}${lookup.logStream === undefined ? "" : ` | log_stream=${JSON.stringify(lookup.logStream)}`}`;
      const stored = new Set<string>();
      for (;;) {
        const page = await fetchPage(queryUrl, query, start, end + 1n, options, lookup);
        let last = start;
        let count = 0;
        for (const found of page) {
          const ours = sameStream(found.stream, stream.labels);
          for (const [ns, line] of found.values) {
            if (ours) stored.add(entryKey(ns, line));
            if (BigInt(ns) > last) last = BigInt(ns);
          }
          count += found.values.length;
        }
        if (count < PAGE_LIMIT) return stored;
        // A full page: go on from its last timestamp (entries at it are asked again, and kept once).
        start = last > start ? last : start + 1n;
      }
    },
  };
}

async function fetchPage(
  queryUrl: string,
  query: string,
  start: bigint,
  end: bigint,
  options: { headers: Record<string, string>; requestTimeoutMs: number },
  lookup: StoredLookupOptions,
): Promise<QueryStream[]> {
  try {
    const response = await got.get(queryUrl, {
      searchParams: {
        query,
        start: start.toString(),
        end: end.toString(),
        limit: String(PAGE_LIMIT),
        direction: "forward",
      },
      headers: {
        ...options.headers,
        // Stream labels apart from structured metadata, so that the stream can be recognised.
        "X-Loki-Response-Encoding-Flags": "categorize-labels",
        ...(lookup.tenant ? { "X-Scope-OrgID": lookup.tenant } : {}),
      },
      throwHttpErrors: false,
      retry: { limit: 0 },
      followRedirect: false,
      timeout: { request: Math.max(1, Math.min(lookup.timeoutMs, options.requestTimeoutMs)) },
      responseType: "text",
    });
    if (response.statusCode !== 200) {
      throw new StoredLookupError(
        `Loki answered ${response.statusCode} to GET ${queryUrl}: ${cutBody(response.body).trim()}`,
      );
    }
    return (JSON.parse(response.body) as { data: { result: QueryStream[] } }).data.result;
  } catch (error) {
    if (error instanceof RequestError) {
      throw new StoredLookupError(`Loki did not answer GET ${queryUrl}: ${error.code}`, { cause: error });
    }
    throw error;
  }
}

/** A stream Loki returned is ours, or one of its shards: the same labels but for what Loki adds. */
function sameStream(found: Record<string, string>, ours: Record<string, string>): boolean {
  const names = Object.keys(found).filter(
    (name) => name !== SHARD_LABEL && !(name === SERVICE_NAME && !(SERVICE_NAME in ours)),
  );
  return names.length === Object.keys(ours).length && names.every((name) => found[name] === ours[name]);
}
