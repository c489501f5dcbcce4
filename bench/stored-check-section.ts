/**
 * What asking Loki before each push (the stored-entries check, `LOKI_SHARD_STREAMS_ENABLED`, on by
 * default) costs in speed: one busy log group shipped live, and the backfill at the raised and at the
 * default pace, each with the check off and on, taking turns (off, on, off, on...) on fresh log
 * groups of the same events, medians of the rounds. Also a backfill over a range Loki holds already
 * (a second run over the same group): with the check on it finds everything and pushes nothing.
 * Prints a table with the load average. `npx node bench/stored-check-section.ts [--quick] [--rounds N]`.
 * Against another Loki: `LOKI_URL` (and `LOKI_TENANT_RAISED`), as bench/loki-endpoint.ts reads them.
 */
import { subscribe } from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";
import { parseArgs } from "node:util";
import { DEFAULT_PACING } from "../functions/core/delivery/pacing.ts";
import { startMotoServer } from "../scripts/moto-server.ts";
import { awsBed, createBucket } from "./aws-bed.ts";
import { type BackfillOptions, measureBackfill, seedBackfillGroup } from "./backfill.ts";
import { type LiveOptions, measureLive, prepareLiveRun } from "./live.ts";
import { openLokiEndpoint } from "./loki-endpoint.ts";
import { loadAverage, machineInfo } from "./machine.ts";
import { fmt, markdownTable } from "./table.ts";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
  },
});
const quick = args.quick === true;
const rounds = Number(args.rounds);
const SIZES = quick
  ? { livePayloads: 30, backfillEvents: 20_000, defaultPaceEvents: 10_000 }
  : { livePayloads: 80, backfillEvents: 60_000, defaultPaceEvents: 30_000 };
const EVENTS_PER_PAYLOAD = 2_000;
const LINE_BYTES = 200;
const IN_FLIGHT = 8;
const RAISED_PACE = { bytesPerSecond: 1024 ** 3, perStreamBytesPerSecond: 1024 ** 3 };
const runLabel = `sc${Date.now().toString(36)}`;

type Mode = "off" | "on";
const MODES: Mode[] = ["off", "on"];
const modeEnv = (mode: Mode): Record<string, string> =>
  mode === "off" ? { LOKI_SHARD_STREAMS_ENABLED: "false" } : {};

interface Sample {
  eventsPerSecond: number;
  eventsPerCpuSecond: number;
  pushed: number;
  events: number;
  /** Requests to Loki's push and query_range endpoints during the run. */
  pushes: number;
  queries: number;
}

/** Counts this process's HTTP requests to Loki, by endpoint (the shipper's client uses node:http). */
const lokiRequests = { pushes: 0, queries: 0 };
subscribe("http.client.request.start", (message) => {
  const path = (message as { request: ClientRequest }).request.path;
  if (path.startsWith("/loki/api/v1/push")) lokiRequests.pushes += 1;
  else if (path.startsWith("/loki/api/v1/query_range")) lokiRequests.queries += 1;
});
async function counted<T extends Omit<Sample, "pushes" | "queries">>(run: () => Promise<T>): Promise<Sample> {
  const before = { ...lokiRequests };
  const result = await run();
  return {
    eventsPerSecond: result.eventsPerSecond,
    eventsPerCpuSecond: result.eventsPerCpuSecond,
    pushed: result.pushed,
    events: result.events,
    pushes: lokiRequests.pushes - before.pushes,
    queries: lokiRequests.queries - before.queries,
  };
}
const samples = new Map<string, Record<Mode, Sample[]>>();
function record(name: string, mode: Mode, sample: Sample): void {
  const entry = samples.get(name) ?? { off: [], on: [] };
  entry[mode].push(sample);
  samples.set(name, entry);
}

const machine = machineInfo();
const loadAtStart = loadAverage();
const moto = await startMotoServer();
const endpoint = await openLokiEndpoint(process.env);
const bed = awsBed(moto.endpoint);
const bucket = `bench-${runLabel}`;
try {
  await createBucket(bed, bucket);
  console.log(
    `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; load average ${loadAtStart}\nLoki endpoint: ${endpoint.description}; tenant "${endpoint.raisedTenant}"`,
  );
  const liveOptions = (label: string, mode: Mode, payloads: number): LiveOptions => ({
    bed,
    bucket,
    pushUrl: endpoint.pushUrl,
    tenant: endpoint.raisedTenant,
    format: "protobuf",
    logGroups: 1,
    payloads,
    eventsPerPayload: EVENTS_PER_PAYLOAD,
    lineBytes: LINE_BYTES,
    inFlight: IN_FLIGHT,
    warmUpMs: 0,
    runLabel: `${runLabel}-${label}-${mode}`,
    extraEnv: modeEnv(mode),
  });
  const backfillOptions = (
    label: string,
    mode: Mode,
    events: number,
    pace: BackfillOptions["pace"],
  ): BackfillOptions => ({
    bed,
    bucket,
    pushUrl: endpoint.pushUrl,
    tenant: endpoint.raisedTenant,
    events,
    lineBytes: LINE_BYTES,
    hours: 6,
    runLabel: `${runLabel}-${label}-${mode}`,
    ...(pace ? { pace } : {}),
    extraEnv: modeEnv(mode),
  });
  const live = async (label: string, mode: Mode, payloads: number) => {
    const options = liveOptions(label, mode, payloads);
    const prepared = await prepareLiveRun(options);
    const result = await measureLive(options, prepared);
    if (result.pushed !== result.events || result.spilled > 0)
      throw new Error(
        `live ${label} ${mode}: ${result.pushed} of ${result.events} pushed, ${result.spilled} spilled`,
      );
    return result;
  };
  const backfill = async (options: BackfillOptions, group: Awaited<ReturnType<typeof seedBackfillGroup>>) => {
    const cpu = process.cpuUsage();
    const result = await measureBackfill(options, group);
    const used = process.cpuUsage(cpu);
    if (result.status !== "succeeded" || result.exported !== options.events)
      throw new Error(`backfill ${options.runLabel}: ${result.status}, ${result.exported} exported`);
    return {
      // Events covered per second: a run over a range Loki holds already pushes nothing.
      eventsPerSecond: result.exported / result.seconds,
      eventsPerCpuSecond: result.exported / ((used.user + used.system) / 1e6),
      pushed: result.pushed,
      events: result.exported,
    };
  };

  // Warm-up (not counted): JIT, connections, moto and Loki's first requests, both modes.
  for (const mode of MODES) {
    await live("warm", mode, 4);
    const options = backfillOptions("warm", mode, 10_000, RAISED_PACE);
    await backfill(options, await seedBackfillGroup(options));
  }

  for (let round = 1; round <= rounds; round += 1) {
    for (const mode of MODES) {
      record("live", mode, await counted(() => live(`live${round}`, mode, SIZES.livePayloads)));
    }
    for (const mode of MODES) {
      const options = backfillOptions(`raised${round}`, mode, SIZES.backfillEvents, RAISED_PACE);
      const group = await seedBackfillGroup(options);
      record("raised", mode, await counted(() => backfill(options, group)));
      // The same range again, as a new run: Loki holds every entry of it already.
      const again = { ...options, runLabel: `${options.runLabel}-again` };
      record("again", mode, await counted(() => backfill(again, group)));
    }
    for (const mode of MODES) {
      const options = backfillOptions(`default${round}`, mode, SIZES.defaultPaceEvents, undefined);
      const group = await seedBackfillGroup(options);
      record("default", mode, await counted(() => backfill(options, group)));
    }
    console.log(`round ${round} of ${rounds} done; load average ${loadAverage()}`);
  }

  const names: Record<string, string> = {
    live: `live, one log group (${fmt.int(SIZES.livePayloads * EVENTS_PER_PAYLOAD)} events, ${IN_FLIGHT} invocations in flight)`,
    raised: `backfill, pace raised to 1 GiB/s (${fmt.int(SIZES.backfillEvents)} events)`,
    again: `backfill again over the same range (${fmt.int(SIZES.backfillEvents)} events stored already)`,
    default: `backfill, default pace ${fmt.fixed(DEFAULT_PACING.bytesPerSecond / 1024 ** 2)} MiB/s, ${DEFAULT_PACING.perStreamBytesPerSecond / 1024} KiB/s per stream (${fmt.int(SIZES.defaultPaceEvents)} events)`,
  };
  const rows = [...samples].map(([name, byMode]) => {
    const off = medianOf(byMode.off);
    const on = medianOf(byMode.on);
    return [
      names[name] ?? name,
      fmt.int(off.eventsPerSecond),
      fmt.int(on.eventsPerSecond),
      fmt.ratio(on.eventsPerSecond / off.eventsPerSecond),
      fmt.int(off.eventsPerCpuSecond),
      fmt.int(on.eventsPerCpuSecond),
      `${fmt.int(off.pushes)} / ${fmt.int(on.pushes)}`,
      fmt.int(on.queries),
    ];
  });
  console.log(
    `\n${markdownTable(
      [
        "measurement (medians of the rounds)",
        "check off events/s",
        "check on events/s",
        "on/off",
        "check off events per CPU s",
        "check on events per CPU s",
        "pushes off / on",
        "queries on",
      ],
      rows,
    )}\n\n${rounds} rounds; load average (1/5/15 min) at the start ${loadAtStart}, at the end ${loadAverage()}; ${machine.date}`,
  );
} finally {
  await endpoint.close();
  await moto.stop();
}

/** Each figure's median over the rounds. */
function medianOf(list: Sample[]): Sample {
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? 0;
  };
  return {
    eventsPerSecond: median(list.map((sample) => sample.eventsPerSecond)),
    eventsPerCpuSecond: median(list.map((sample) => sample.eventsPerCpuSecond)),
    pushed: median(list.map((sample) => sample.pushed)),
    events: median(list.map((sample) => sample.events)),
    pushes: median(list.map((sample) => sample.pushes)),
    queries: median(list.map((sample) => sample.queries)),
  };
}
