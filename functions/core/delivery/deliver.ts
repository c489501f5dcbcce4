import type { Logger } from "@aws-lambda-powertools/logger";
import type { S3Client } from "@aws-sdk/client-s3";
import type { EventLabelOptions } from "../labels/labels.ts";
import { NO_TENANT_ROUTING, type TenantRouting, tenantProblem } from "../labels/tenant-routing.ts";
import type { LogEvent } from "../log-event.ts";
import type { LokiPushClient } from "../loki/loki-client.ts";
import { cutBody } from "../loki/loki-errors.ts";
import { attributeRefusals, type RefusalKind } from "../loki/loki-response.ts";
import {
  buildStreams,
  precheckEvent,
  splitIntoRequests,
  type TrackedEntry,
  type TrackedStream,
} from "./batching.ts";
import { groupBy, keepUndelivered } from "./keep-undelivered.ts";
import { DEFAULT_RETRY, type PushOutcome, PushSession, type RetryOptions } from "./push-session.ts";
import { addDropped, type RuleSet } from "./rules.ts";

export { DEFAULT_RETRY, type RetryOptions } from "./push-session.ts";

/**
 * Delivery of events to Loki with nothing lost: when it resolves, every event is stored in Loki,
 * or kept in S3 under `rejected/` (refused by Loki, with the reason) or `spill/` (Loki
 * unreachable, throttling past the deadline, retries exhausted, stream limit). Shared by the live
 * shipper, backfill and replay. If S3 fails too, it throws (SpillError).
 *
 * Every push carries one stream (see splitIntoRequests), so that Loki's answer tells the fate of
 * every entry in it; different streams are pushed in parallel, a stream's parts one after another.
 */

export interface GroupBatch {
  logGroup: string;
  /** Group-level labels, no time_shard. */
  labels: Record<string, string>;
  /**
   * The group's own Loki tenant (chosen by its tenant tag); undefined: the client's default tenant.
   * Checked against the allow list on every path: a tenant not in it gets nothing pushed.
   */
  tenant?: string;
  events: LogEvent[];
  /** Per-entry label choices (log stream as label, structured metadata); defaults: off, on. */
  eventLabels?: EventLabelOptions;
  /**
   * Drop and mask rules, for events fresh from CloudWatch only: events read back from a chunk were
   * shaped before they were kept, and applying the rules twice could change them (rules.ts).
   */
  rules?: RuleSet;
}

export interface DeliveryDeps {
  loki: LokiPushClient;
  /** The tenants a batch may name (LOKI_TENANTS_ALLOWED); default: none but the client's own. */
  tenants?: TenantRouting;
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
  /** Called for each push Loki accepted, with the age of its oldest accepted event (freshness metrics). */
  onAccepted?: (accepted: AcceptedPush) => void;
}

export interface AcceptedPush {
  logGroup: string;
  /** Events of the push Loki stored. */
  events: number;
  /** Milliseconds from the oldest stored event's timestamp to Loki's answer. */
  oldestAgeMs: number;
}

/** What a delivery counted: one call's report, or (replay) the sum over a unit's chunks. */
export interface DeliveryCounts {
  received: number;
  pushed: number;
  /** Events dropped by a drop rule, keyed "rule N" (counted in `received`, never kept in S3). */
  dropped: Record<string, number>;
  /** Refused events by reason kind (too_old, too_new, line_too_long, invalid_labels...). */
  refused: Record<string, number>;
  spilled: number;
  /** The part of `spilled` that Loki refused for the tenant's active-stream limit (see STREAM_LIMIT_REFUSAL). */
  streamLimited: number;
  /** The part of `pushed` that Loki held already (an earlier push of the same events): not sent again. */
  alreadyStored: number;
  retries: number;
  bytes: number;
  requests: number;
}

export interface DeliveryReport extends DeliveryCounts {
  /** S3 keys of the spill/ and rejected/ chunks written. */
  chunkKeys: string[];
}

/** An event Loki refused (or would refuse), kept under rejected/ with the reason. */
export interface Refused {
  entry: LogEvent;
  logGroup: string;
  labels: Record<string, string>;
  tenant?: string;
  kind: RefusalKind;
  reason: string;
}

/** An entry Loki did not take (yet), kept under spill/ for replay. */
export interface Spilled {
  entry: TrackedEntry;
  tenant?: string;
  reason: string;
}

const UNCHECKED_WARNING =
  "Could not ask Loki which entries it holds already; pushing without asking. If Loki shards this tenant's streams (shard_streams, on by default), an event pushed again can be stored twice: let the shipper's credentials query Loki, or turn shard_streams off for the tenant and set LOKI_SHARD_STREAMS_ENABLED=false";

/** Streams pushed at once when the client does not say (LOKI_PUSH_CONCURRENCY). */
const DEFAULT_PUSH_CONCURRENCY = 4;

export async function deliverEvents(batches: GroupBatch[], deps: DeliveryDeps): Promise<DeliveryReport> {
  const now = deps.now ?? Date.now;
  const report = emptyDeliveryReport();
  for (const group of batches) report.received += group.events.length;
  const { pushable, refused } = precheckBatches(applyRules(batches, report), deps, now());
  // One push session per tenant: Loki's limits, and so its 429s and circuit breaking, are per tenant.
  const lanes: { delivery: StreamDelivery; parts: TrackedStream[] }[] = [];
  const deliveries: StreamDelivery[] = [];
  for (const [tenant, groups] of groupBy(pushable, (group) => group.tenant ?? "")) {
    const delivery = new StreamDelivery(tenantSession(deps, tenant, report, now), report, refused, {
      tenant,
      now,
      ...(deps.logger ? { logger: deps.logger } : {}),
      ...(deps.onAccepted ? { onAccepted: deps.onAccepted } : {}),
    });
    deliveries.push(delivery);
    const requests = splitIntoRequests(
      buildStreams(groups),
      deps.loki.maxBatchBytes,
      deps.loki.maxBatchEntries,
    );
    for (const parts of byStream(requests)) lanes.push({ delivery, parts });
  }
  await forEachLimited(lanes, deps.loki.pushConcurrency ?? DEFAULT_PUSH_CONCURRENCY, async (lane) => {
    for (const part of lane.parts) await lane.delivery.deliverOnce(part);
  });

  const eventLabelsByGroup = new Map(
    batches.flatMap((group) => (group.eventLabels ? [[group.logGroup, group.eventLabels] as const] : [])),
  );
  const spilled = deliveries.flatMap((delivery) => delivery.spilled);
  await keepUndelivered({ refused, spilled }, deps, report, eventLabelsByGroup);
  return report;
}

/** The push session of one tenant ("" for the client's default tenant). */
function tenantSession(deps: DeliveryDeps, tenant: string, report: DeliveryReport, now: () => number) {
  return new PushSession(
    {
      loki: deps.loki,
      ...(tenant ? { tenant } : {}),
      deadline: deps.deadline,
      now,
      sleep: deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
      retry: { ...DEFAULT_RETRY, ...deps.retry },
      ...(deps.logger ? { logger: deps.logger } : {}),
      ...(deps.onPushAttempt ? { onPushAttempt: deps.onPushAttempt } : {}),
    },
    report,
  );
}

export function emptyDeliveryCounts(): DeliveryCounts {
  return {
    received: 0,
    pushed: 0,
    dropped: {},
    refused: {},
    spilled: 0,
    streamLimited: 0,
    alreadyStored: 0,
    retries: 0,
    bytes: 0,
    requests: 0,
  };
}

export function emptyDeliveryReport(): DeliveryReport {
  return { ...emptyDeliveryCounts(), chunkKeys: [] };
}

export function addDeliveryCounts(into: DeliveryCounts, add: DeliveryCounts): void {
  into.received += add.received;
  into.pushed += add.pushed;
  addDropped(into.dropped, add.dropped);
  into.spilled += add.spilled;
  into.streamLimited += add.streamLimited;
  into.alreadyStored += add.alreadyStored;
  into.retries += add.retries;
  into.bytes += add.bytes;
  into.requests += add.requests;
  for (const [reason, count] of Object.entries(add.refused))
    into.refused[reason] = (into.refused[reason] ?? 0) + count;
}

/** Shapes the batches that carry rules (what they drop is counted, never kept). */
function applyRules(batches: GroupBatch[], report: DeliveryReport): GroupBatch[] {
  return batches.map(({ rules, ...group }) => {
    if (!rules) return group;
    const shaped = rules.shape(group.logGroup, group.events);
    addDropped(report.dropped, shaped.dropped);
    return { ...group, events: shaped.events };
  });
}

/**
 * Splits off the events Loki would refuse (too old, too new, line too long) before pushing, and
 * every event of a group whose tenant the allow list does not have (checked again at every replay).
 */
function precheckBatches(
  batches: GroupBatch[],
  deps: Pick<DeliveryDeps, "loki" | "tenants">,
  nowMs: number,
): { pushable: GroupBatch[]; refused: Refused[] } {
  const refused: Refused[] = [];
  const refuse = (group: GroupBatch, event: LogEvent, kind: RefusalKind, reason: string) =>
    refused.push({
      entry: event,
      logGroup: group.logGroup,
      labels: group.labels,
      ...(group.tenant ? { tenant: group.tenant } : {}),
      kind,
      reason,
    });
  const pushable = batches.map((group) => {
    const tenantRefusal = group.tenant && tenantProblem(group.tenant, deps.tenants ?? NO_TENANT_ROUTING);
    if (tenantRefusal) {
      for (const event of group.events) refuse(group, event, "tenant_not_allowed", tenantRefusal);
      return { ...group, events: [] };
    }
    const events = group.events.filter((event) => {
      const refusal = precheckEvent(event, deps.loki.limits, nowMs);
      if (refusal) refuse(group, event, refusal.kind, refusal.reason);
      return !refusal;
    });
    return { ...group, events };
  });
  return { pushable, refused };
}

/**
 * Delivers one push request (one stream) and learns the fate of each entry: stored, refused
 * (attributed from Loki's 400, or found by halving), or spilled with the reason.
 */
class StreamDelivery {
  readonly spilled: Spilled[] = [];
  readonly #session: PushSession;
  readonly #report: DeliveryReport;
  readonly #refused: Refused[];
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #onAccepted: ((accepted: AcceptedPush) => void) | undefined;
  /** The session's tenant, added to what it spills or refuses ({} for the default tenant). */
  readonly #tenant: { tenant?: string };
  #warnedUnchecked = false;

  constructor(
    session: PushSession,
    report: DeliveryReport,
    refused: Refused[],
    options: {
      tenant: string;
      now: () => number;
      logger?: Logger;
      onAccepted?: (accepted: AcceptedPush) => void;
    },
  ) {
    this.#tenant = options.tenant ? { tenant: options.tenant } : {};
    this.#session = session;
    this.#report = report;
    this.#refused = refused;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#onAccepted = options.onAccepted;
  }

  /**
   * Delivers what Loki does not hold yet of a request: an entry already in Loki (an earlier push of
   * the same event, in this stream or one of its shards) counts as pushed and is not sent again.
   */
  async deliverOnce(request: TrackedStream): Promise<void> {
    const { entries, unchecked } = await this.#session.unstored(request);
    const alreadyStored = request.entries.length - entries.length;
    this.#report.pushed += alreadyStored;
    this.#report.alreadyStored += alreadyStored;
    if (unchecked && !this.#warnedUnchecked) {
      this.#warnedUnchecked = true;
      this.#logger?.warn(UNCHECKED_WARNING, { reason: cutBody(unchecked) });
    }
    return this.deliver({ ...request, entries });
  }

  async deliver(request: TrackedStream): Promise<void> {
    if (request.entries.length === 0) return;
    if (this.#session.circuitOpen) return this.#spill(request.entries, this.#session.circuitOpen);
    const outcome = await this.#session.push(request);
    switch (outcome.kind) {
      case "stored":
        return this.#accepted(request.entries);
      case "undeliverable":
        return this.#spill(request.entries, outcome.reason);
      case "metadata_disallowed":
        return this.#withoutMetadata(request, outcome.body);
      case "too_large":
        if (request.entries.length === 1) {
          const reason = `Loki cannot take this entry in one push: ${cutBody(outcome.body).trim()}`;
          return this.#refuse(request.entries[0] as TrackedEntry, "line_too_long", reason);
        }
        return this.#deliverHalves(request);
      case "refused":
        return this.#attribute(request, outcome);
    }
  }

  async #withoutMetadata(request: TrackedStream, body: string): Promise<void> {
    if (this.#session.withoutMetadata)
      return this.#spill(request.entries, `Loki answered 400: ${cutBody(body).trim()}`);
    // A setting of the tenant (limits_config.allow_structured_metadata), not of the entries: the
    // lines themselves still hold the request id; only the log stream name is left out.
    this.#session.withoutMetadata = true;
    this.#logger?.warn(
      "Loki does not accept structured metadata for this tenant; pushing without it (allow it in Loki, or set LABEL_STRUCTURED_METADATA=false)",
      { body: cutBody(body) },
    );
    return this.deliver(request);
  }

  /** A 400 for one stream: attribute it to entries when Loki's body says exactly which, else halve. */
  async #attribute(
    request: TrackedStream,
    outcome: Extract<PushOutcome, { kind: "refused" }>,
  ): Promise<void> {
    const attribution = attributeRefusals(request.entries, outcome.body);
    if (attribution) {
      const stored: TrackedEntry[] = [];
      request.entries.forEach((entry, index) => {
        const refusal = attribution.get(index);
        if (refusal) this.#refuse(entry, refusal.kind, refusal.reason);
        else stored.push(entry);
      });
      return this.#accepted(stored);
    }
    if (request.entries.length === 1) {
      return this.#refuse(request.entries[0] as TrackedEntry, "other", cutBody(outcome.body).trim());
    }
    return this.#deliverHalves(request);
  }

  async #deliverHalves(request: TrackedStream): Promise<void> {
    const middle = Math.ceil(request.entries.length / 2);
    await this.deliver({ ...request, entries: request.entries.slice(0, middle) });
    await this.deliver({ ...request, entries: request.entries.slice(middle) });
  }

  #accepted(entries: TrackedEntry[]): void {
    this.#report.pushed += entries.length;
    const first = entries[0];
    if (!first || !this.#onAccepted) return;
    let oldest = first.event.timestamp;
    for (const entry of entries) oldest = Math.min(oldest, entry.event.timestamp);
    this.#onAccepted({ logGroup: first.logGroup, events: entries.length, oldestAgeMs: this.#now() - oldest });
  }

  #spill(entries: TrackedEntry[], reason: string): void {
    for (const entry of entries) this.spilled.push({ entry, ...this.#tenant, reason });
  }

  #refuse(entry: TrackedEntry, kind: RefusalKind, reason: string): void {
    this.#refused.push({
      entry: entry.event,
      logGroup: entry.logGroup,
      labels: entry.groupLabels,
      ...this.#tenant,
      kind,
      reason,
    });
  }
}

/** The requests of each stream, in order (splitIntoRequests puts a stream's parts together). */
function byStream(requests: TrackedStream[]): TrackedStream[][] {
  const lanes = new Map<string, TrackedStream[]>();
  for (const request of requests) {
    const lane = lanes.get(request.key);
    if (lane) lane.push(request);
    else lanes.set(request.key, [request]);
  }
  return [...lanes.values()];
}

/** Runs `work` on every item, at most `limit` at a time. */
export async function forEachLimited<T>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
