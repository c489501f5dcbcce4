import type { Logger } from "@aws-lambda-powertools/logger";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  buildStreams,
  type PrecheckRefusal,
  precheckEvent,
  splitIntoBatches,
  type TrackedEntry,
  type TrackedStream,
} from "./batching.ts";
import type { ChunkRecord } from "./chunk-format.ts";
import type { EventLabelOptions } from "./labels.ts";
import type { LogEvent } from "./log-event.ts";
import type { LokiPushClient, PushAttempt } from "./loki-client.ts";
import { cutBody, LokiUnreachableError } from "./loki-errors.ts";
import { attributeRefusals, type RefusalKind } from "./loki-response.ts";
import { keepEventChunk } from "./spill.ts";

/**
 * Delivery of events to Loki with nothing lost: when it resolves, every event is stored in Loki,
 * or kept in S3 under `rejected/` (refused by Loki, with the reason) or `spill/` (Loki
 * unreachable, throttling past the deadline, retries exhausted). Shared by the live shipper,
 * backfill and replay. If S3 fails too, it throws (SpillError).
 */

export interface GroupBatch {
  logGroup: string;
  /** Group-level labels, no time_shard. */
  labels: Record<string, string>;
  events: LogEvent[];
  /** Per-entry label choices (log stream as label, structured metadata); defaults: off, on. */
  eventLabels?: EventLabelOptions;
}

export interface RetryOptions {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 10, baseDelayMs: 250, maxDelayMs: 8_000 };

export interface DeliveryDeps {
  loki: LokiPushClient;
  s3: S3Client;
  bucket: string;
  /** Epoch ms: stop retrying and spill before it. */
  deadline: number;
  logger?: Logger;
  now?: () => number;
  runId?: string;
  retry?: Partial<RetryOptions>;
  sleep?: (ms: number) => Promise<void>;
  /** Called after each push attempt (metrics). */
  onPushAttempt?: (attempt: { status: number | "network_error"; durationMs: number }) => void;
}

export interface DeliveryReport {
  received: number;
  pushed: number;
  /** Refused events by reason kind (too_old, too_new, line_too_long, invalid_labels...). */
  refused: Record<string, number>;
  spilled: number;
  retries: number;
  bytes: number;
  requests: number;
  /** S3 keys of the spill/ and rejected/ chunks written. */
  chunkKeys: string[];
}

type PushOutcome =
  | { kind: "stored" }
  | { kind: "refused"; body: string }
  | { kind: "too_large"; body: string }
  | { kind: "metadata_disallowed"; body: string }
  | { kind: "undeliverable"; reason: string };

interface Refused {
  entry: LogEvent;
  logGroup: string;
  labels: Record<string, string>;
  kind: RefusalKind;
  reason: string;
}

/** No push attempt is started with less time than this before the deadline. */
const MIN_ATTEMPT_MS = 250;
/** Loki's answer when the tenant does not allow structured metadata (limits_config.allow_structured_metadata). */
const STRUCTURED_METADATA_DISABLED = /structured metadata, but this feature is disallowed/;
/** Consecutive 429s after which a push of several entries is split in two. */
const THROTTLED_SPLIT_AFTER = 3;

function countEntries(request: TrackedStream[]): number {
  return request.reduce((sum, stream) => sum + stream.entries.length, 0);
}

export async function deliverEvents(batches: GroupBatch[], deps: DeliveryDeps): Promise<DeliveryReport> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const retry = { ...DEFAULT_RETRY, ...deps.retry };
  const report: DeliveryReport = {
    received: 0,
    pushed: 0,
    refused: {},
    spilled: 0,
    retries: 0,
    bytes: 0,
    requests: 0,
    chunkKeys: [],
  };
  const refused: Refused[] = [];
  const spilled: { entry: TrackedEntry; reason: string }[] = [];
  /** Once Loki is found unreachable or misconfigured, the rest is spilled without trying. */
  let circuitOpen: string | undefined;

  const accepted: GroupBatch[] = [];
  const startMs = now();
  for (const group of batches) {
    report.received += group.events.length;
    const pushable: LogEvent[] = [];
    for (const event of group.events) {
      const refusal: PrecheckRefusal | undefined = precheckEvent(event, deps.loki.limits, startMs);
      if (refusal) {
        refused.push({
          entry: event,
          logGroup: group.logGroup,
          labels: group.labels,
          kind: refusal.kind,
          reason: refusal.reason,
        });
      } else {
        pushable.push(event);
      }
    }
    accepted.push({ ...group, events: pushable });
  }

  const streams = buildStreams(accepted);
  const requests = splitIntoBatches(streams, deps.loki.maxBatchBytes, deps.loki.maxBatchEntries);

  const pushOnce = async (request: TrackedStream[]): Promise<PushOutcome> => {
    let attempt = 0;
    for (;;) {
      if (circuitOpen) return { kind: "undeliverable", reason: circuitOpen };
      const remaining = deps.deadline - now();
      if (remaining < MIN_ATTEMPT_MS) {
        return {
          kind: "undeliverable",
          reason: "the invocation's deadline came before Loki accepted the push",
        };
      }
      attempt += 1;
      let answer: PushAttempt | undefined;
      let failure: string;
      try {
        report.requests += 1;
        answer = await deps.loki.push(request, { timeoutMs: remaining });
        report.bytes += answer.bytes;
        deps.onPushAttempt?.({ status: answer.status, durationMs: answer.durationMs });
      } catch (error) {
        if (!(error instanceof LokiUnreachableError)) throw error;
        deps.onPushAttempt?.({ status: "network_error", durationMs: 0 });
        failure = error.message;
      }
      if (answer) {
        const status = answer.status;
        if (status >= 200 && status < 300) return { kind: "stored" };
        if (status === 400 && STRUCTURED_METADATA_DISABLED.test(answer.body)) {
          return { kind: "metadata_disallowed", body: answer.body };
        }
        if (status === 400) return { kind: "refused", body: answer.body };
        // Loki fails pushes over its 4 MiB gRPC message size with a 500 that no retry fixes;
        // proxies answer 413. Both mean: send less at once.
        if (status === 413 || (status === 500 && /larger than max/.test(answer.body))) {
          return { kind: "too_large", body: answer.body };
        }
        failure = `Loki answered ${status}: ${cutBody(answer.body).trim()}`;
        // A push larger than the tenant's burst is refused with 429 however long one waits
        // (Loki's rate limiter, no Retry-After): after a few 429s, try smaller pushes.
        if (status === 429 && attempt >= THROTTLED_SPLIT_AFTER && countEntries(request) > 1) {
          report.retries += 1;
          return { kind: "too_large", body: answer.body };
        }
        if (status !== 429 && status < 500) {
          // 401, 403, 404...: a target or credentials problem; every further push would fail the same way.
          circuitOpen = failure;
          deps.logger?.error("Loki refused the push as a whole; spilling the rest", {
            status,
            body: cutBody(answer.body),
          });
          return { kind: "undeliverable", reason: failure };
        }
      }
      failure ??= "unknown failure";
      if (attempt >= retry.maxAttempts) {
        circuitOpen = `${failure} (after ${attempt} attempts)`;
        return { kind: "undeliverable", reason: circuitOpen };
      }
      const backoff = Math.random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.max(backoff, answer?.retryAfterMs ?? 0);
      if (now() + delay + MIN_ATTEMPT_MS > deps.deadline) {
        circuitOpen = `${failure} (no time left for another attempt before the deadline)`;
        return { kind: "undeliverable", reason: circuitOpen };
      }
      report.retries += 1;
      deps.logger?.warn("Loki push failed, retrying", {
        attempt,
        delayMs: Math.round(delay),
        failure: cutBody(failure),
      });
      await sleep(delay);
    }
  };

  const markStored = (entries: TrackedEntry[]) => {
    report.pushed += entries.length;
  };
  const markSpilled = (entries: TrackedEntry[], reason: string) => {
    for (const entry of entries) spilled.push({ entry, reason });
  };
  const markRefused = (entry: TrackedEntry, kind: RefusalKind, reason: string) => {
    refused.push({ entry: entry.event, logGroup: entry.logGroup, labels: entry.groupLabels, kind, reason });
  };

  // Set once Loki says the tenant does not allow structured metadata: the rest goes without it.
  let withoutMetadata = false;

  const deliverRequest = async (request: TrackedStream[]): Promise<void> => {
    const entries = request.flatMap((stream) => stream.entries);
    if (entries.length === 0) return;
    const outcome = await pushOnce(withoutMetadata ? stripMetadata(request) : request);
    if (outcome.kind === "stored") return markStored(entries);
    if (outcome.kind === "metadata_disallowed") {
      if (withoutMetadata) return markSpilled(entries, `Loki answered 400: ${cutBody(outcome.body).trim()}`);
      // A setting of the tenant (limits_config.allow_structured_metadata), not of the entries: the
      // lines themselves still hold the request id; only the log stream name is left out.
      withoutMetadata = true;
      deps.logger?.warn(
        "Loki does not accept structured metadata for this tenant; pushing without it (allow it in Loki, or set LABEL_STRUCTURED_METADATA=false)",
        { body: cutBody(outcome.body) },
      );
      return deliverRequest(request);
    }
    if (outcome.kind === "undeliverable") return markSpilled(entries, outcome.reason);
    if (outcome.kind === "too_large") {
      if (entries.length === 1) {
        const only = entries[0] as TrackedEntry;
        return markRefused(
          only,
          "line_too_long",
          `Loki cannot take this entry in one push: ${cutBody(outcome.body).trim()}`,
        );
      }
      for (const half of halves(request)) await deliverRequest(half);
      return;
    }
    // A 400. Loki reports only part of what it refused in a multi-stream request, so push each
    // stream alone to learn the answer per stream (stored entries are not duplicated: Loki keeps
    // an identical entry once).
    if (request.length > 1) {
      for (const stream of request) await deliverRequest([stream]);
      return;
    }
    const stream = request[0] as TrackedStream;
    const attribution = attributeRefusals(stream.entries, outcome.body);
    if (attribution) {
      stream.entries.forEach((entry, index) => {
        const refusal = attribution.get(index);
        if (refusal) markRefused(entry, refusal.kind, refusal.reason);
        else report.pushed += 1;
      });
      return;
    }
    if (stream.entries.length === 1) {
      return markRefused(stream.entries[0] as TrackedEntry, "other", cutBody(outcome.body).trim());
    }
    for (const half of halves(request)) await deliverRequest(half);
  };

  for (const request of requests) {
    if (circuitOpen) {
      markSpilled(
        request.flatMap((stream) => stream.entries),
        circuitOpen,
      );
      continue;
    }
    await deliverRequest(request);
  }

  // Kept chunks carry the per-entry label choices, so that their replay lands in the same streams.
  const eventLabelsByGroup = new Map(
    batches.flatMap((group) => (group.eventLabels ? [[group.logGroup, group.eventLabels] as const] : [])),
  );
  await keepUndelivered(refused, spilled, deps, report, eventLabelsByGroup);
  return report;
}

/** The same push without structured metadata (entries keep their line and timestamp). */
function stripMetadata(request: TrackedStream[]): TrackedStream[] {
  return request.map((stream) => ({
    ...stream,
    entries: stream.entries.map(({ metadata: _metadata, ...entry }) => entry),
  }));
}

/** Splits a push in two: by streams when it has several, else the stream's entries. */
function halves(request: TrackedStream[]): TrackedStream[][] {
  if (request.length > 1) {
    const middle = Math.ceil(request.length / 2);
    return [request.slice(0, middle), request.slice(middle)];
  }
  const stream = request[0] as TrackedStream;
  const middle = Math.ceil(stream.entries.length / 2);
  return [
    [{ ...stream, entries: stream.entries.slice(0, middle) }],
    [{ ...stream, entries: stream.entries.slice(middle) }],
  ];
}

async function keepUndelivered(
  refused: Refused[],
  spilled: { entry: TrackedEntry; reason: string }[],
  deps: DeliveryDeps,
  report: DeliveryReport,
  eventLabelsByGroup: ReadonlyMap<string, EventLabelOptions>,
): Promise<void> {
  const now = deps.now ?? Date.now;
  const eventLabelsOf = (logGroup: string) => {
    const eventLabels = eventLabelsByGroup.get(logGroup);
    return eventLabels ? { eventLabels } : {};
  };
  const writes: Promise<void>[] = [];

  const rejectedByGroup = groupBy(refused, (item) => item.logGroup);
  for (const [logGroup, items] of rejectedByGroup) {
    for (const item of items) report.refused[item.kind] = (report.refused[item.kind] ?? 0) + 1;
    const records: ChunkRecord[] = items.map((item) => ({ ...item.entry, reason: item.reason }));
    const labels = (items[0] as Refused).labels;
    writes.push(
      keepEventChunk(
        deps.s3,
        deps.bucket,
        {
          kind: "rejected",
          logGroup,
          labels,
          reason: `refused by Loki: ${[...new Set(items.map((item) => item.kind))].join(", ")}`,
          records,
          ...(deps.runId ? { runId: deps.runId } : {}),
          ...eventLabelsOf(logGroup),
        },
        now,
      ).then((key) => {
        report.chunkKeys.push(key);
        deps.logger?.warn("events refused by Loki kept in S3", { logGroup, count: records.length, key });
      }),
    );
  }

  // One spill chunk per log group and reason, so that each chunk says truly why it is there.
  const spilledByGroup = groupBy(spilled, (item) => `${item.entry.logGroup}\u0000${item.reason}`);
  for (const items of spilledByGroup.values()) {
    report.spilled += items.length;
    const first = items[0] as { entry: TrackedEntry; reason: string };
    const logGroup = first.entry.logGroup;
    const records: ChunkRecord[] = items.map((item) => ({ ...item.entry.event }));
    writes.push(
      keepEventChunk(
        deps.s3,
        deps.bucket,
        {
          kind: "spill",
          logGroup,
          labels: first.entry.groupLabels,
          reason: first.reason,
          records,
          ...(deps.runId ? { runId: deps.runId } : {}),
          ...eventLabelsOf(logGroup),
        },
        now,
      ).then((key) => {
        report.chunkKeys.push(key);
        deps.logger?.warn("events Loki did not take kept in S3 for replay", {
          logGroup,
          count: records.length,
          key,
          reason: first.reason,
        });
      }),
    );
  }
  const results = await Promise.allSettled(writes);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failed) throw failed.reason;
}

function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const list = groups.get(key);
    if (list) list.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
