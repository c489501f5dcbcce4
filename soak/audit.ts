import { type CloudWatchLogsClient, FilterLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { eventNanoseconds } from "../functions/core/delivery/timestamps.ts";
import { getChunk, listKeys } from "../functions/core/storage/run-store.ts";
import { ALLOWED_TENANTS, GROUPS } from "./drivers.ts";
import { eventIdsInQueue } from "./lambda.ts";

/**
 * The soak's audit, independent of the shipper's reports: every event CloudWatch holds must be in
 * exactly one place: in its own Loki tenant once, or kept in spill/ or rejected/ with a reason, or
 * in the failure queue. It reads each place itself: CloudWatch (FilterLogEvents), Loki (query_range
 * straight to Loki, per tenant), S3 (the chunks, through the project's chunk format) and SQS.
 */
export interface AuditInput {
  logs: CloudWatchLogsClient;
  s3: S3Client;
  bucket: string;
  sqs: SQSClient;
  queueUrl: string;
  /** Loki itself, not the fault proxy. */
  lokiUrl: string;
  from: number;
  to: number;
}

export interface AuditResult {
  events: number;
  inLoki: number;
  keptByReason: Record<string, number>;
  inQueue: number;
  /** In Loki and also kept in S3 or the queue (a replay would find it stored). */
  alsoKept: number;
  missing: string[];
  duplicated: string[];
  /** Entries in Loki that no CloudWatch event explains (or in a tenant not their own). */
  strayInLoki: number;
}

interface CloudWatchEvent {
  id: string;
  timestamp: number;
  message: string;
  logGroup: string;
  tenant: string;
}

export async function audit(input: AuditInput): Promise<AuditResult> {
  const events = await cloudWatchEvents(input);
  const loki = await lokiCounts(input);
  const kept = await keptInS3(input);
  const queued = await eventIdsInQueue(input.sqs, input.queueUrl);
  const result: AuditResult = {
    events: events.length,
    inLoki: 0,
    keptByReason: {},
    inQueue: 0,
    alsoKept: 0,
    missing: [],
    duplicated: [],
    strayInLoki: 0,
  };
  for (const event of events) {
    const key = lokiKey(event.tenant, event.timestamp, event.id, event.message);
    const timesInLoki = loki.get(key) ?? 0;
    loki.delete(key);
    const s3Places = kept.get(event.id) ?? [];
    const queueCopies = queued.get(event.id) ?? 0;
    const name = `${event.logGroup} ${new Date(event.timestamp).toISOString()} ${event.id} "${event.message}"`;
    // backfill/ holds a run's export, not a place an event may stay in.
    const usable = s3Places.filter((place) => !place.startsWith("backfill/"));
    if (timesInLoki > 1) result.duplicated.push(`${name}: ${timesInLoki} times in Loki`);
    if (timesInLoki >= 1) {
      result.inLoki++;
      if (usable.length > 0 || queueCopies > 0) result.alsoKept++;
      continue;
    }
    if (usable.length > 1)
      result.duplicated.push(`${name}: kept ${usable.length} times (${usable.join("; ")})`);
    if (usable.length > 0) {
      const reason = usable[0] as string;
      result.keptByReason[reason] = (result.keptByReason[reason] ?? 0) + 1;
    } else if (queueCopies > 0) {
      result.inQueue++;
    } else {
      const stuck = s3Places.length > 0 ? ` (only in ${s3Places.join("; ")})` : "";
      result.missing.push(`${name}${stuck}`);
    }
  }
  for (const count of loki.values()) result.strayInLoki += count;
  return result;
}

async function cloudWatchEvents(input: AuditInput): Promise<CloudWatchEvent[]> {
  const events: CloudWatchEvent[] = [];
  for (const group of GROUPS) {
    let nextToken: string | undefined;
    do {
      const page = await input.logs.send(
        new FilterLogEventsCommand({
          logGroupName: group.name,
          startTime: input.from,
          endTime: input.to,
          nextToken,
        }),
      );
      for (const event of page.events ?? []) {
        events.push({
          id: event.eventId ?? "",
          timestamp: event.timestamp ?? 0,
          message: event.message ?? "",
          logGroup: group.name,
          tenant: group.tenant,
        });
      }
      nextToken = page.nextToken;
    } while (nextToken);
  }
  return events;
}

const lokiKey = (tenant: string, timestampMs: number, id: string, line: string) =>
  `${tenant} ${eventNanoseconds(timestampMs, id)} ${line}`;

const LOKI_PAGE = 5_000;

/** How many times each `<tenant> <ns> <line>` is in Loki, for the allowed tenants and the refused one. */
async function lokiCounts(input: AuditInput): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const tenants = [...new Set([...ALLOWED_TENANTS, ...GROUPS.map((group) => group.tenant)])];
  for (const tenant of tenants) {
    const windows: [bigint, bigint][] = [
      [BigInt(input.from) * 1_000_000n, BigInt(input.to + 60_000) * 1_000_000n],
    ];
    while (windows.length > 0) {
      const [start, end] = windows.pop() as [bigint, bigint];
      const entries = await queryRange(input.lokiUrl, tenant, start, end);
      // A full page may hide entries: split the window instead of paging (paging would blur duplicates).
      if (entries.length >= LOKI_PAGE && end - start > 1n) {
        const middle = start + (end - start) / 2n;
        windows.push([start, middle], [middle, end]);
        continue;
      }
      for (const [ns, line] of entries) {
        const key = `${tenant} ${ns} ${line}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  return counts;
}

/** Entries in [start, end) of every soak stream of a tenant. */
async function queryRange(
  lokiUrl: string,
  tenant: string,
  start: bigint,
  end: bigint,
): Promise<[string, string][]> {
  const url = new URL("/loki/api/v1/query_range", lokiUrl);
  url.searchParams.set("query", '{log_group=~"/soak/.+"}');
  url.searchParams.set("start", start.toString());
  url.searchParams.set("end", end.toString());
  url.searchParams.set("limit", String(LOKI_PAGE));
  url.searchParams.set("direction", "forward");
  const answer = await fetch(url, { headers: { "X-Scope-OrgID": tenant } });
  const body = await answer.text();
  if (answer.status !== 200)
    throw new Error(`Loki query for ${tenant} answered ${answer.status}: ${body.slice(0, 500)}`);
  const parsed = JSON.parse(body) as { data: { result: { values: [string, string][] }[] } };
  return parsed.data.result.flatMap((stream) => stream.values);
}

/** Event id → the places it is kept in S3, each as `<prefix>: <reason>`. */
async function keptInS3(input: AuditInput): Promise<Map<string, string[]>> {
  const places = new Map<string, string[]>();
  const store = { s3: input.s3, bucket: input.bucket };
  for (const prefix of ["spill/", "rejected/", "malformed/", "backfill/"]) {
    for (const key of await listKeys(store, prefix)) {
      const found = await getChunk(store, key);
      if (!found) continue;
      for (const record of found.chunk.records) {
        const reason = shortReason(record.reason ?? found.chunk.header.reason ?? "no reason");
        const place = prefix === "backfill/" ? `backfill/ chunk ${key}` : `${prefix} ${reason}`;
        places.set(record.id, [...(places.get(record.id) ?? []), place]);
      }
    }
  }
  return places;
}

/** A reason without its details (ports, request ids), so that like reasons add up. */
function shortReason(reason: string): string {
  const head = reason.split(/: |\(|;/)[0]?.trim() ?? reason;
  return head.length > 70 ? `${head.slice(0, 67)}...` : head;
}
