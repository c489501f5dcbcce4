import type { EventLabelOptions } from "../labels/labels.ts";
import type { ChunkRecord } from "../storage/chunk-format.ts";
import type { DeliveryDeps, DeliveryReport, Refused, Spilled } from "./deliver.ts";
import { STREAM_LIMIT_REFUSAL } from "./push-session.ts";
import { type EventChunkToKeep, keepEventChunk } from "./spill.ts";

/**
 * Writes what Loki did not take to S3: refused events under `rejected/` (one chunk per group),
 * the rest under `spill/` (one chunk per group and reason, so that each chunk says truly why it is
 * there). Kept chunks carry the per-entry label choices, so that their replay lands in the same
 * streams. Throws when S3 fails, so that the invocation fails rather than lose the events.
 */
export async function keepUndelivered(
  undelivered: { refused: Refused[]; spilled: Spilled[] },
  deps: DeliveryDeps,
  report: DeliveryReport,
  eventLabelsByGroup: ReadonlyMap<string, EventLabelOptions>,
): Promise<void> {
  const keep = async (chunk: EventChunkToKeep, logged: Record<string, unknown>) => {
    const eventLabels = eventLabelsByGroup.get(chunk.logGroup);
    const key = await keepEventChunk(
      deps.s3,
      deps.bucket,
      { ...chunk, ...(deps.runId ? { runId: deps.runId } : {}), ...(eventLabels ? { eventLabels } : {}) },
      deps.now ?? Date.now,
    );
    report.chunkKeys.push(key);
    const message =
      chunk.kind === "rejected"
        ? "events refused by Loki kept in S3"
        : "events Loki did not take kept in S3 for replay";
    deps.logger?.warn(message, { logGroup: chunk.logGroup, count: chunk.records.length, key, ...logged });
  };
  const writes = [
    ...rejectedChunks(undelivered.refused, report).map((chunk) => keep(chunk, {})),
    ...spillChunks(undelivered.spilled, report).map((chunk) => keep(chunk, { reason: chunk.reason })),
  ];
  const results = await Promise.allSettled(writes);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failed) throw failed.reason;
}

function rejectedChunks(refused: Refused[], report: DeliveryReport): EventChunkToKeep[] {
  return [...groupBy(refused, (item) => item.logGroup)].map(([logGroup, items]) => {
    for (const item of items) report.refused[item.kind] = (report.refused[item.kind] ?? 0) + 1;
    const records: ChunkRecord[] = items.map((item) => ({ ...item.entry, reason: item.reason }));
    return {
      kind: "rejected",
      logGroup,
      labels: (items[0] as Refused).labels,
      reason: `refused by Loki: ${[...new Set(items.map((item) => item.kind))].join(", ")}`,
      records,
    };
  });
}

function spillChunks(spilled: Spilled[], report: DeliveryReport): EventChunkToKeep[] {
  const byGroupAndReason = groupBy(spilled, (item) => `${item.entry.logGroup}\u0000${item.reason}`);
  return [...byGroupAndReason.values()].map((items) => {
    report.spilled += items.length;
    const first = items[0] as Spilled;
    if (STREAM_LIMIT_REFUSAL.test(first.reason)) report.streamLimited += items.length;
    return {
      kind: "spill",
      logGroup: first.entry.logGroup,
      labels: first.entry.groupLabels,
      reason: first.reason,
      records: items.map((item) => ({ ...item.entry.event })),
    };
  });
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
