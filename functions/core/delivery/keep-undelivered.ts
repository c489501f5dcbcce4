import type { EventLabelOptions } from "../labels/labels.ts";
import type { ChunkRecord } from "../storage/chunk-format.ts";
import type { DeliveryDeps, DeliveryReport, Refused, Spilled } from "./deliver.ts";
import { STREAM_LIMIT_REFUSAL } from "./push-session.ts";
import { type EventChunkToKeep, keepEventChunk } from "./spill.ts";

/**
 * Writes what Loki did not take to S3: refused events under `rejected/` (one chunk per group and
 * tenant), the rest under `spill/` (one chunk per group, tenant and reason, so that each chunk says
 * truly why it is there and where it goes). Kept chunks carry the per-entry label choices, so that their replay lands in the same
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
  const byGroupAndTenant = groupBy(refused, (item) => `${item.logGroup}\u0000${item.tenant ?? ""}`);
  return [...byGroupAndTenant.values()].map((items) => {
    for (const item of items) report.refused[item.kind] = (report.refused[item.kind] ?? 0) + 1;
    const records: ChunkRecord[] = items.map((item) => ({ ...item.entry, reason: item.reason }));
    const first = items[0] as Refused;
    return {
      kind: "rejected",
      logGroup: first.logGroup,
      labels: first.labels,
      ...(first.tenant ? { tenant: first.tenant } : {}),
      reason: rejectedReason(items),
      records,
    };
  });
}

/** A rejected chunk's reason: Loki's refusal kinds, or (never pushed) why its tenant is not allowed. */
function rejectedReason(items: Refused[]): string {
  const kinds = [...new Set(items.map((item) => item.kind))];
  const notAllowed = items.find((item) => item.kind === "tenant_not_allowed");
  if (notAllowed && kinds.length === 1) return notAllowed.reason;
  return `refused by Loki: ${kinds.join(", ")}`;
}

function spillChunks(spilled: Spilled[], report: DeliveryReport): EventChunkToKeep[] {
  const byGroupAndReason = groupBy(
    spilled,
    (item) => `${item.entry.logGroup}\u0000${item.tenant ?? ""}\u0000${item.reason}`,
  );
  return [...byGroupAndReason.values()].map((items) => {
    report.spilled += items.length;
    const first = items[0] as Spilled;
    if (STREAM_LIMIT_REFUSAL.test(first.reason)) report.streamLimited += items.length;
    return {
      kind: "spill",
      logGroup: first.entry.logGroup,
      labels: first.entry.groupLabels,
      ...(first.tenant ? { tenant: first.tenant } : {}),
      reason: first.reason,
      records: items.map((item) => ({ ...item.entry.event })),
    };
  });
}

export function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const list = groups.get(key);
    if (list) list.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
