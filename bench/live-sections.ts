import type { AwsBed } from "./aws-bed.ts";
import {
  type CeilingFormat,
  type CeilingOptions,
  type CeilingResult,
  encodeBatches,
  measureCeiling,
} from "./ceiling.ts";
import { type LiveOptions, type LiveResult, measureLive, prepareLiveRun } from "./live.ts";
import type { LokiEndpoint } from "./loki-endpoint.ts";
import { corePinning, type Pinning, pinnedRun } from "./pinning.ts";
import { fmt, markdownTable } from "./table.ts";

/**
 * Sections 2 and 3 of `npm run bench` (bench/run.ts), also run alone by bench/live-section.ts: the
 * Loki endpoint's ingest ceiling (a minimal pusher) and live shipping through the shipper's core,
 * each on shared cores and, when the benchmark started Loki itself, pinned (bench/pinning.ts).
 */
export const LIVE_SHAPE = {
  lineBytes: 200,
  connections: 4,
  inFlight: 8,
  eventsPerPayload: 2_000,
  logGroups: 8,
};

export interface LiveSectionsInput {
  bed: AwsBed;
  bucket: string;
  endpoint: LokiEndpoint;
  runLabel: string;
  quick: boolean;
}

/** A measurement's cores: shared by Loki and the shipper, or pinned one each. */
export type Cores = "shared" | "pinned";

export interface CeilingRow {
  result: CeilingResult;
  cores: Cores;
}

export interface LiveRow {
  result: LiveResult;
  cores: Cores;
  ceiling: CeilingResult;
}

interface Planned<Options, Prepared> {
  options: Options;
  prepared: Prepared;
  cores: Cores;
}

export interface PreparedLiveSections {
  pinning: Pinning | undefined;
  /** Why there are no pinned rows, when there are none. */
  notPinned: string | undefined;
  ceilings: Planned<CeilingOptions, ReturnType<typeof encodeBatches>>[];
  lives: (Planned<LiveOptions, Awaited<ReturnType<typeof prepareLiveRun>>> & { format: CeilingFormat })[];
  /** A live run apart from the measured ones, for the profile of live shipping. */
  profile: { options: LiveOptions; payloads: Awaited<ReturnType<typeof prepareLiveRun>> };
}

/** Generates every payload and batch before the first measurement, so that generation never competes with it. */
export async function prepareLiveSections(input: LiveSectionsInput): Promise<PreparedLiveSections> {
  const { endpoint, quick } = input;
  const found = corePinning(endpoint.lokiPid);
  const pinning = typeof found === "string" ? undefined : found;
  const cores: Cores[] = pinning ? ["shared", "pinned"] : ["shared"];
  const live = (
    tenant: string,
    payloads: number,
    label: string,
    format: "protobuf" | "json" = "protobuf",
  ) => ({
    bed: input.bed,
    bucket: input.bucket,
    pushUrl: endpoint.pushUrl,
    tenant,
    format,
    logGroups: LIVE_SHAPE.logGroups,
    payloads,
    eventsPerPayload: LIVE_SHAPE.eventsPerPayload,
    lineBytes: LIVE_SHAPE.lineBytes,
    inFlight: LIVE_SHAPE.inFlight,
    warmUpMs: 2_000,
    runLabel: `${input.runLabel}-${label}`,
  });
  const ceiling = (
    tenant: string,
    format: CeilingFormat,
    batches: number,
    warmUpMs: number,
    label: string,
  ) => ({
    pushUrl: endpoint.pushUrl,
    tenant,
    format,
    connections: LIVE_SHAPE.connections,
    durationMs: quick ? 5_000 : 10_000,
    warmUpMs,
    batches,
    lineBytes: LIVE_SHAPE.lineBytes,
    runLabel: `${input.runLabel}-${tenant}-${format}-${label}`,
  });
  const raisedBatches = quick ? 40 : 300;
  const raisedPayloads = quick ? 30 : 150;
  const ceilingPlans = [
    ...cores.map((core) => ({
      options: ceiling(endpoint.raisedTenant, "protobuf+snappy", raisedBatches, 500, core),
      cores: core,
    })),
    {
      options: ceiling(endpoint.raisedTenant, "json+gzip", raisedBatches, 500, "json"),
      cores: "shared" as const,
    },
    // The default tenant's 6 MB burst is spent within the first second when pushing flat out.
    {
      options: ceiling(endpoint.defaultTenant, "protobuf+snappy", quick ? 20 : 60, 2_000, "default"),
      cores: "shared" as const,
    },
  ];
  const livePlans = [
    ...cores.map((core) => ({
      options: live(endpoint.raisedTenant, raisedPayloads, `raised-${core}`),
      cores: core,
      format: "protobuf+snappy" as const,
    })),
    {
      options: live(endpoint.defaultTenant, quick ? 30 : 80, "default"),
      cores: "shared" as const,
      format: "protobuf+snappy" as const,
    },
    // The same run pushing JSON+gzip (LOKI_PUSH_FORMAT=json), against the JSON+gzip ceiling.
    {
      options: live(endpoint.raisedTenant, raisedPayloads, "json", "json"),
      cores: "shared" as const,
      format: "json+gzip" as const,
    },
  ];
  const profileOptions = live(endpoint.raisedTenant, quick ? 10 : 40, "profile");
  const lives = [];
  for (const plan of livePlans) lives.push({ ...plan, prepared: await prepareLiveRun(plan.options) });
  return {
    pinning,
    notPinned: typeof found === "string" ? found : undefined,
    ceilings: ceilingPlans.map((plan) => ({ ...plan, prepared: encodeBatches(plan.options) })),
    lives,
    profile: { options: profileOptions, payloads: await prepareLiveRun(profileOptions) },
  };
}

async function onCores<T>(
  prepared: PreparedLiveSections,
  cores: Cores,
  measure: () => Promise<T>,
): Promise<T> {
  return cores === "pinned" && prepared.pinning ? pinnedRun(prepared.pinning, measure) : measure();
}

export async function measureCeilings(prepared: PreparedLiveSections): Promise<CeilingRow[]> {
  const rows: CeilingRow[] = [];
  for (const plan of prepared.ceilings) {
    const result = await onCores(prepared, plan.cores, () => measureCeiling(plan.options, plan.prepared));
    rows.push({ result, cores: plan.cores });
  }
  return rows;
}

/** Each live run, next to the ceiling of the same tenant, format and cores. */
export async function measureLiveRows(
  prepared: PreparedLiveSections,
  ceilings: CeilingRow[],
): Promise<LiveRow[]> {
  const rows: LiveRow[] = [];
  for (const plan of prepared.lives) {
    const result = await onCores(prepared, plan.cores, () => measureLive(plan.options, plan.prepared));
    const ceiling = ceilings.find(
      (row) =>
        row.result.tenant === plan.options.tenant &&
        row.result.format === plan.format &&
        row.cores === plan.cores,
    );
    if (!ceiling)
      throw new Error(`no ceiling measured for ${plan.options.tenant}, ${plan.format}, ${plan.cores}`);
    rows.push({ result, cores: plan.cores, ceiling: ceiling.result });
  }
  return rows;
}

export function ceilingTable(rows: CeilingRow[]): string {
  return markdownTable(
    [
      "tenant",
      "format",
      "cores",
      "events/s",
      "line MB/s",
      "rate MiB/s (line+metadata)",
      "pushes",
      "429",
      "failed",
      "measured s",
    ],
    rows.map(({ result, cores }) => [
      result.tenant,
      result.format,
      cores,
      fmt.int(result.eventsPerSecond),
      fmt.fixed(result.lineMegabytesPerSecond),
      fmt.fixed(result.rateMebibytesPerSecond, 2),
      result.requests,
      result.throttled,
      result.failed,
      `${fmt.fixed(result.measuredSeconds)}${result.exhausted ? " (all batches sent)" : ""}${result.wholeRun ? " (warm-up included)" : ""}`,
    ]),
  );
}

export function liveTable(rows: LiveRow[]): string {
  return markdownTable(
    [
      "tenant",
      "format",
      "cores",
      "events",
      "events/s",
      "line MB/s",
      "ceiling events/s",
      "ratio",
      "events per CPU s",
      "pushed",
      "spilled",
      "refused",
      "retries",
      "pushes",
      "pushes per GB",
    ],
    rows.map(({ result, ceiling, cores }) => [
      result.tenant,
      ceiling.format,
      cores,
      fmt.int(result.events),
      fmt.int(result.eventsPerSecond),
      fmt.fixed(result.lineMegabytesPerSecond),
      fmt.int(ceiling.eventsPerSecond),
      fmt.ratio(result.eventsPerSecond / ceiling.eventsPerSecond),
      fmt.int(result.eventsPerCpuSecond),
      fmt.int(result.pushed),
      result.spilled,
      result.refused,
      result.retries,
      result.requests,
      fmt.int(result.pushesPerGb),
    ]),
  );
}

/** The row of a tenant's protobuf+snappy run (the default format) on the given cores. */
export function rowOf<Row extends { cores: Cores }>(
  rows: Row[],
  tenant: string,
  cores: Cores,
  tenantOf: (row: Row) => { tenant: string; format: string },
): Row | undefined {
  return rows.find(
    (row) =>
      row.cores === cores && tenantOf(row).tenant === tenant && tenantOf(row).format === "protobuf+snappy",
  );
}
