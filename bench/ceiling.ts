import http from "node:http";
import https from "node:https";
import { gzipSync } from "node:zlib";
import { encodePushRequestProtobuf } from "../functions/core/loki/push-protobuf.ts";
import { snappyCompress } from "../functions/core/loki/snappy.ts";
import { logLine } from "./payloads.ts";

/**
 * The ingest ceiling of a Loki endpoint: a minimal pusher that sends pre-encoded batches over a
 * few keep-alive connections as fast as the endpoint accepts them. Only HTTP and the tenant
 * header, so it measures a real Loki the same way. The batches are shaped like the shipper's:
 * 200-byte lines, one stream per push of at most 1 MiB decoded, structured metadata `log_stream`
 * and `request_id` on every entry (Loki counts their bytes against the ingestion rate too).
 */

export type CeilingFormat = "json+gzip" | "protobuf+snappy";

export interface CeilingOptions {
  pushUrl: string;
  tenant: string;
  format: CeilingFormat;
  connections: number;
  /** Total run time; the first `warmUpMs` are not counted (the tenant's burst is spent then). */
  durationMs: number;
  warmUpMs: number;
  /** Distinct batches encoded before the run; the run ends early when all were stored. */
  batches: number;
  lineBytes: number;
  runLabel: string;
}

export interface CeilingResult {
  format: CeilingFormat;
  tenant: string;
  connections: number;
  measuredSeconds: number;
  eventsPerSecond: number;
  /** Line bytes per second, MB (10^6). */
  lineMegabytesPerSecond: number;
  /** Bytes as Loki's rate limiter counts them (line + structured metadata), MiB per second. */
  rateMebibytesPerSecond: number;
  requests: number;
  throttled: number;
  failed: number;
  /** Events stored over the whole run (warm-up included). */
  stored: number;
  exhausted: boolean;
  /** The run was too short to leave out the warm-up. */
  wholeRun: boolean;
}

interface EncodedBatch {
  body: Buffer;
  entries: number;
  lineBytes: number;
  rateBytes: number;
}

const MAX_BATCH_BYTES = 1024 * 1024;

/** Encodes `count` distinct one-stream batches, timestamps ascending from a few minutes ago. */
export function encodeBatches(options: CeilingOptions): EncodedBatch[] {
  const logStream = "2026/11/25/[$LATEST]0123456789abcdef0123456789abcdef";
  const baseNs = BigInt(Date.now() - 5 * 60_000) * 1_000_000n;
  const batches: EncodedBatch[] = [];
  let entryIndex = 0;
  for (let batch = 0; batch < options.batches; batch += 1) {
    const labels = { job: "loki-shipper-bench", bench_run: options.runLabel, batch: String(batch) };
    const entries: { ns: bigint; line: string; metadata: [string, string][] }[] = [];
    let decoded = 0;
    let lineBytes = 0;
    let rateBytes = 0;
    while (decoded < MAX_BATCH_BYTES - 1024) {
      const ns = baseNs + BigInt(entryIndex) * 1_000n;
      const requestId = `${(Math.floor(entryIndex / 20) % 1e8).toString(16).padStart(8, "0")}-1111-2222-3333-444455556666`;
      const line = logLine(options.lineBytes, entryIndex, Number(ns / 1_000_000n), requestId);
      const metadata: [string, string][] = [
        ["log_stream", logStream],
        ["request_id", requestId],
      ];
      entries.push({ ns, line, metadata });
      const metadataBytes = metadata.reduce((sum, [name, value]) => sum + name.length + value.length, 0);
      lineBytes += line.length;
      rateBytes += line.length + metadataBytes;
      decoded += line.length + metadataBytes + 24;
      entryIndex += 1;
    }
    let body: Buffer;
    if (options.format === "json+gzip") {
      const json = JSON.stringify({
        streams: [
          {
            stream: labels,
            values: entries.map((entry) => [
              entry.ns.toString(),
              entry.line,
              Object.fromEntries(entry.metadata),
            ]),
          },
        ],
      });
      body = gzipSync(json, { level: 1 });
    } else {
      body = snappyCompress(encodePushRequestProtobuf([{ labels, entries }]));
    }
    batches.push({ body, entries: entries.length, lineBytes, rateBytes });
  }
  return batches;
}

function post(
  agent: http.Agent,
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; body: string }> {
  const request = url.protocol === "https:" ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent, headers: { ...headers, "Content-Length": String(body.length) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (part: Buffer) => parts.push(part));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

export async function measureCeiling(
  options: CeilingOptions,
  batches = encodeBatches(options),
): Promise<CeilingResult> {
  const url = new URL(options.pushUrl);
  const agent = new (url.protocol === "https:" ? https.Agent : http.Agent)({
    keepAlive: true,
    maxSockets: options.connections,
  });
  const headers: Record<string, string> = {
    "X-Scope-OrgID": options.tenant,
    "Content-Type": options.format === "json+gzip" ? "application/json" : "application/x-protobuf",
    ...(options.format === "json+gzip" ? { "Content-Encoding": "gzip" } : {}),
  };
  const queue = [...batches];
  let requests = 0;
  let throttled = 0;
  let failed = 0;
  let stored = 0;
  const counted = { events: 0, lineBytes: 0, rateBytes: 0 };
  const all = { events: 0, lineBytes: 0, rateBytes: 0 };
  const started = performance.now();
  const warmUpEnds = started + options.warmUpMs;
  const ends = started + options.durationMs;
  let lastCounted = warmUpEnds;
  let lastStored = started;

  const worker = async () => {
    while (performance.now() < ends) {
      const batch = queue.shift();
      if (!batch) return;
      requests += 1;
      let status = 0;
      try {
        status = (await post(agent, url, headers, batch.body)).status;
      } catch {
        status = 0;
      }
      const at = performance.now();
      if (status === 204 || status === 200) {
        stored += batch.entries;
        all.events += batch.entries;
        all.lineBytes += batch.lineBytes;
        all.rateBytes += batch.rateBytes;
        lastStored = at;
        if (at > warmUpEnds && at <= ends) {
          counted.events += batch.entries;
          counted.lineBytes += batch.lineBytes;
          counted.rateBytes += batch.rateBytes;
          lastCounted = at;
        }
        continue;
      }
      // Not stored: 429 (over the tenant's rate; Loki stores nothing of the request) or a failure.
      if (status === 429) throttled += 1;
      else failed += 1;
      queue.unshift(batch);
      await new Promise((resolve) => setTimeout(resolve, status === 429 ? 20 : 100));
    }
  };
  await Promise.all(Array.from({ length: options.connections }, () => worker()));
  agent.destroy();
  const exhausted = queue.length === 0;
  // When the batches ran out before the end, the rate is over the time until the last one; when
  // they ran out during the warm-up (a fast endpoint), over the whole run, warm-up included.
  const windowMs = (exhausted ? lastCounted : Math.min(performance.now(), ends)) - warmUpEnds;
  const wholeRun = windowMs < 500;
  const totals = wholeRun ? all : counted;
  const seconds = (wholeRun ? lastStored - started : windowMs) / 1000;
  return {
    format: options.format,
    tenant: options.tenant,
    connections: options.connections,
    measuredSeconds: seconds,
    eventsPerSecond: totals.events / seconds,
    lineMegabytesPerSecond: totals.lineBytes / 1e6 / seconds,
    rateMebibytesPerSecond: totals.rateBytes / (1024 * 1024) / seconds,
    wholeRun,
    requests,
    throttled,
    failed,
    stored,
    exhausted,
  };
}
