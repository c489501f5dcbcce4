/**
 * `npm run bench`: how fast loki-shipper ships and backfills, measured against the ingest ceiling
 * of the Loki endpoint in the same run. Starts moto (scripts/moto-server.ts) and the Loki test
 * server (loki-test-server/, in its own process) itself; `LOKI_URL` (with `LOKI_TENANT_RAISED` and
 * `LOKI_TENANT_DEFAULT`) points it at another Loki instead. Prints the tables and writes
 * BENCHMARKS.md. `--quick` runs smaller sizes (for trying the benchmark itself, not for figures).
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { DEFAULT_PACING } from "../functions/core/delivery/pacing.ts";
import { startMotoServer } from "../scripts/moto-server.ts";
import { awsBed, createBucket, createTaggedLogGroup } from "./aws-bed.ts";
import {
  type BackfillResult,
  measureBackfill,
  measurePager,
  type PagerResult,
  replayRun,
  seedBackfillGroup,
} from "./backfill.ts";
import { BENCH_TMP } from "./bundle.ts";
import type { CeilingResult } from "./ceiling.ts";
import { type ColdStartResult, coldStartTable, measureColdStart } from "./cold-start.ts";
import { costTable, countWorkflowUsage, PRICES, SHIPPER_MEMORY_MB } from "./cost.ts";
import { type ProfileFrame, profileInProcess, profileTable } from "./cpu-profile.ts";
import { type HandlerPathRow, handlerPathTable, measureHandlerPath } from "./handler-path.ts";
import { measureLive } from "./live.ts";
import {
  type CeilingRow,
  ceilingTable,
  LIVE_SHAPE,
  type LiveRow,
  liveTable,
  measureCeilings,
  measureLiveRows,
  prepareLiveSections,
  rowOf,
} from "./live-sections.ts";
import { openLokiEndpoint } from "./loki-endpoint.ts";
import { loadAverage, machineInfo } from "./machine.ts";
import { LAMBDA_256MB_FLAGS, type MemoryResult, measureMemory, writeSliceChunks } from "./memory.ts";
import { measureRules, rulesSection } from "./rules.ts";
import { fmt, markdownTable } from "./table.ts";
import { measureTransform, TRANSFORM_FORMATS, type TransformRow, transformTable } from "./transform.ts";

const USAGE = `Usage: npm run bench [-- --quick]

Measures the shipper transform, the Loki endpoint's ingest ceiling, live shipping, backfill, memory
and cold start, prints the tables and writes BENCHMARKS.md (--quick: small sizes, written to .bench-tmp/).
LOKI_URL (with LOKI_TENANT_RAISED, LOKI_TENANT_DEFAULT) measures another Loki instead of the test server.`;

const { values: args } = (() => {
  try {
    return parseArgs({
      options: { quick: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
})();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const quick = args.quick === true;
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LINE_BYTES = LIVE_SHAPE.lineBytes;
/** LOKI_PUSH_FORMAT's default. */
const DEFAULT_FORMAT = "protobuf+snappy";
const CONNECTIONS = LIVE_SHAPE.connections;
const IN_FLIGHT = LIVE_SHAPE.inFlight;
const SIZES = {
  transformCounts: [1_000, 10_000],
  transformLineBytes: [100, LINE_BYTES, 1_024, 10_240],
  eventsPerPayload: LIVE_SHAPE.eventsPerPayload,
  backfillEvents: quick ? 20_000 : 100_000,
  memoryRuns: quick ? [20_000, 100_000] : [100_000, 1_000_000],
};
/** Section 6: repetitions of 7 imports of each bundle, as bench/cold-start-section.ts and the README take them. */
const COLD_START = { repeat: 3, runs: 7 };
/** A real Loki 3.4.6 single binary, raised limits, 200-byte lines, JSON+gzip, 4 connections. */
const REFERENCE_EVENTS_PER_SECOND = 243_000;
const TARGETS = {
  transformEventsPerCpuSecond: 250_000,
  /** Line MB (10^6) per CPU second at 1 KiB lines and above. */
  transformMegabytesPerCpuSecond: 100,
  /** The whole shipper handler at 1 KiB lines, events per CPU second. */
  handlerEventsPerCpuSecond: 100_000,
  ratio: 0.8,
  /** Live shipping over the ceiling with Loki and the shipper on a core each. */
  pinnedRatio: 0.9,
  rssMb: 256,
  /** Peak RSS of the larger run over the smaller one: "flat" allows this much noise. */
  rssGrowth: 1.15,
  bundleBytes: 1_000_000,
  importMs: 150,
};

const say = (text = "") => process.stdout.write(`${text}\n`);
const section = (title: string) => say(`\n## ${title}\n`);
const runLabel = `r${Date.now().toString(36)}`;

async function main(): Promise<void> {
  const machine = machineInfo();
  const loadAtStart = loadAverage();
  say(`loki-shipper benchmarks, ${machine.date}${quick ? " (quick sizes)" : ""}`);
  say(
    `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGb.toFixed(1)} GB, Node ${machine.node}; load average ${loadAtStart}`,
  );

  section("1. Shipper transform (decode, labels, encode; no network), one core");
  const transformRows: TransformRow[] = [];
  for (const count of SIZES.transformCounts)
    for (const lineBytes of SIZES.transformLineBytes)
      for (const { name } of TRANSFORM_FORMATS) transformRows.push(measureTransform(count, lineBytes, name));
  const handlerPathRows = await measureHandlerPath();
  const transformText = [
    transformTable(transformRows),
    rulesSection(measureRules()),
    HANDLER_PATH_INTRO,
    handlerPathTable(handlerPathRows),
  ].join("\n\n");
  say(transformText);
  const profiles: TransformProfile[] = [];
  for (const lineBytes of PROFILED_LINE_BYTES)
    profiles.push({ lineBytes, frames: await profileTransform(lineBytes) });

  // Section 6 runs before moto and Loki start, as bench/cold-start-section.ts runs alone: Loki's
  // background work (flushes, compaction) would load the imports it times.
  const coldStart = await measureColdStart(COLD_START);
  const coldStartText = coldStartTable(coldStart);
  const moto = await startMotoServer();
  const endpoint = await openLokiEndpoint(process.env);
  const bed = awsBed(moto.endpoint);
  const bucket = `bench-${runLabel}`;
  await createBucket(bed, bucket);
  try {
    say(
      `\nLoki endpoint: ${endpoint.description}; raised tenant "${endpoint.raisedTenant}", default tenant "${endpoint.defaultTenant}"`,
    );

    // Everything is generated before the first measurement, so generation never competes with it.
    const liveSections = await prepareLiveSections({ bed, bucket, endpoint, runLabel, quick });
    section(
      `2. Ingest ceiling of the Loki endpoint (minimal pusher, ${CONNECTIONS} connections, ${LINE_BYTES}-byte lines)`,
    );
    const ceilings = await measureCeilings(liveSections);
    const ceilingText = `${ceilingTable(ceilings)}\n\nCores: ${liveSections.pinning?.description ?? `no pinned rows, ${liveSections.notPinned}`}.`;
    say(ceilingText);
    const ceilingOf = (tenant: string) =>
      rowOf(ceilings, tenant, "shared", (row) => row.result)?.result as CeilingResult;
    const raisedCeiling = ceilingOf(endpoint.raisedTenant);

    section(`3. Live shipping end to end (shipSubscriptionEvent, ${IN_FLIGHT} invocations in flight)`);
    const liveRows = await measureLiveRows(liveSections, ceilings);
    const liveText = liveTable(liveRows);
    say(liveText);
    const liveOf = (tenant: string, cores: "shared" | "pinned") =>
      rowOf(liveRows, tenant, cores, (row) => ({ tenant: row.result.tenant, format: row.ceiling.format }));
    const liveRaised = (liveOf(endpoint.raisedTenant, "shared") as LiveRow).result;
    // Profiled apart from the measured runs: the profiler slows what it watches.
    const { profile: liveProfileRun } = liveSections;
    const liveProfile = await profileInProcess(
      () => measureLive(liveProfileRun.options, liveProfileRun.payloads),
      ROOT,
      15,
    );

    section("4. Backfill end to end (moto -> S3 chunks -> Loki, runBackfillLocally, raised tenant)");
    const backfillOptions = {
      bed,
      bucket,
      pushUrl: endpoint.pushUrl,
      tenant: endpoint.raisedTenant,
      events: SIZES.backfillEvents,
      lineBytes: LINE_BYTES,
      hours: 6,
      runLabel,
    };
    // Once with the request's default pace (half of Loki's default tenant rate, room for live
    // shipping), once paced for the raised tenant: what the engine does when the tenant allows it.
    const raisedPaceOptions = {
      ...backfillOptions,
      runLabel: `${runLabel}-paced`,
      pace: { bytesPerSecond: 1024 ** 3, perStreamBytesPerSecond: 1024 ** 3 },
    };
    const group = await seedBackfillGroup(backfillOptions);
    const raisedPaceGroup = await seedBackfillGroup(raisedPaceOptions);
    const pager = await measurePager(bed, group.logGroup, group.startMs, group.endMs + 1);
    const backfill = await measureBackfill(backfillOptions, group);
    const backfillUsage = countWorkflowUsage(bed.s3);
    const backfillRaisedPace = await measureBackfill(raisedPaceOptions, raisedPaceGroup, backfillUsage.deps);
    const backfillCounts = backfillUsage.finish(backfillRaisedPace.pushed * LINE_BYTES);
    const replayUsage = countWorkflowUsage(bed.s3);
    const replayed = await replayRun(
      { ...raisedPaceOptions, runLabel: `${runLabel}-replayed` },
      raisedPaceOptions.runLabel,
      replayUsage.deps,
    );
    const replayCounts = replayUsage.finish(replayed.pushed * LINE_BYTES);
    const backfillBound = Math.min(pager.eventsPerSecond, raisedCeiling.eventsPerSecond);
    const backfillText = backfillTable(pager, backfill, backfillRaisedPace, raisedCeiling);
    say(backfillText);

    section("5. Peak RSS (fresh child process per run, bundled code, 256 MB Lambda heap flags)");
    const memoryGroup = `/aws/lambda/bench-${runLabel}-memory`;
    await createTaggedLogGroup(bed, memoryGroup, { runtime: "nodejs", name: "bench-memory" });
    const memory: MemoryResult[] = [];
    const memoryBase = {
      awsEndpoint: moto.endpoint,
      bucket,
      pushUrl: endpoint.pushUrl,
      tenant: endpoint.raisedTenant,
      eventsPerInvocation: 5_000,
      lineBytes: LINE_BYTES,
    };
    for (const events of SIZES.memoryRuns)
      memory.push(await measureMemory({ ...memoryBase, kind: "shipper", events, logGroup: memoryGroup }));
    for (const events of SIZES.memoryRuns) {
      const replayRunId = `bench-${runLabel}-memory-${events}`;
      const replayGroup = `/aws/lambda/bench-${runLabel}-replay-${events}`;
      await writeSliceChunks(bed, bucket, replayRunId, replayGroup, events, 20_000, LINE_BYTES);
      memory.push(
        await measureMemory({
          ...memoryBase,
          kind: "replay",
          events,
          logGroup: replayGroup,
          runId: replayRunId,
        }),
      );
    }
    const memoryText = memoryTable(memory);
    say(memoryText);

    section("6. Cold start of the Lambda bundles (measured before moto and Loki started)");
    say(coldStartText);

    section(`7. Cost per GB of log lines (${PRICES.region} list prices, ${PRICES.date})`);
    const transformDefault = transformRows.find(
      (row) => row.events === 10_000 && row.lineBytes === LINE_BYTES && row.format === "protobuf+snappy",
    ) as TransformRow;
    const costText = costTable(
      {
        eventsPerCpuSecond: liveRaised.eventsPerCpuSecond,
        eventsPerInvocation: SIZES.eventsPerPayload,
        lineBytes: LINE_BYTES,
        wireRatio: transformDefault.wireMegabytes / ((transformDefault.events * LINE_BYTES) / 1e6),
      },
      backfillCounts,
      replayCounts,
    );
    say(costText);

    const loadAtEnd = loadAverage();
    const summary = summarise({
      transformRows,
      handlerPathRows,
      liveRaised: liveOf(endpoint.raisedTenant, "shared") as LiveRow,
      liveRaisedPinned: liveOf(endpoint.raisedTenant, "pinned"),
      liveDefault: liveOf(endpoint.defaultTenant, "shared") as LiveRow,
      backfill,
      backfillRaisedPace,
      backfillBound,
      pager,
      memory,
      coldStart,
    });
    section("Targets");
    say(summary.table);
    const markdown = renderMarkdown({
      machine,
      loadAtStart,
      loadAtEnd,
      endpoint: endpoint.description,
      tenants: `raised "${endpoint.raisedTenant}", default "${endpoint.defaultTenant}"`,
      summary: summary.table,
      misses: summary.misses,
      transformText,
      ceilingText,
      liveText,
      backfillText,
      memoryText,
      coldStartText,
      costText,
      profiles,
      liveProfile,
      replayUnpaced: replayUnpacedNote(memory),
      referenceNote: referenceNote(ceilings),
      pinning: liveSections.pinning?.description ?? `not pinned: ${liveSections.notPinned}`,
    });
    // Quick sizes are for trying the benchmark, not for the project's figures.
    const outfile = quick ? join(BENCH_TMP, "BENCHMARKS.quick.md") : join(ROOT, "BENCHMARKS.md");
    writeFileSync(outfile, markdown);
    say(`\nWrote ${outfile}`);
    say(`Load average at the end: ${loadAtEnd}`);
  } finally {
    await endpoint.close();
    await moto.stop();
  }
}

/** Section 1's paragraph on the whole handler path (bench/handler-path.ts). */
const HANDLER_PATH_INTRO = [
  "### Whole handler path per CPU second",
  "",
  "`shipSubscriptionEvent` on one payload of 10,000 events: the transform above plus rules, pre-checks,",
  "the stored-entries query before each push and the push over HTTP with got, against a Loki stand-in in",
  "the same process (204 to pushes, no entries to queries); tags and function facts cached, as in a warm",
  "container. Median of 3 rounds; the stand-in's share is reading the bodies. `npx node bench/handler-path.ts`",
  "runs it alone (`--profile` for its top frames).",
].join("\n");

/** The transform's profile at these line sizes (10,000 events, protobuf+snappy). */
const PROFILED_LINE_BYTES = [LINE_BYTES, 1_024, 10_240];

interface TransformProfile {
  lineBytes: number;
  frames: ProfileFrame[];
}

function transformProfileSections(profiles: TransformProfile[]): string {
  return profiles
    .map(({ lineBytes, frames }) =>
      [
        `### Profile (V8 profiler, 10,000 events of ${fmt.int(lineBytes)} bytes, protobuf+snappy, payload built beforehand), top frames by self time`,
        "",
        profileTable(frames),
      ].join("\n"),
    )
    .join("\n\n");
}

async function profileTransform(lineBytes: number): Promise<ProfileFrame[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [
    fileURLToPath(new URL("./profile-transform.ts", import.meta.url)),
    quick ? "2" : "4",
    String(lineBytes),
  ]);
  return JSON.parse(stdout) as ProfileFrame[];
}

/** Events/s the replay's default pacing allows for events shaped like the ceiling's batches. */
function pacedEventsPerSecond(ceiling: CeilingResult): { eventsPerSecond: number; bytesPerEvent: number } {
  // Bytes per event as Loki's limiter (and the replay's pacer) counts them: the ceiling's batches
  // carry the same line size and structured metadata as the shipper's entries.
  const bytesPerEvent = (ceiling.rateMebibytesPerSecond * 1024 * 1024) / ceiling.eventsPerSecond;
  return { eventsPerSecond: DEFAULT_PACING.bytesPerSecond / bytesPerEvent, bytesPerEvent };
}

function backfillTable(
  pager: PagerResult,
  backfill: BackfillResult,
  backfillRaisedPace: BackfillResult,
  ceiling: CeilingResult,
): string {
  const bound = Math.min(pager.eventsPerSecond, ceiling.eventsPerSecond);
  const paced = pacedEventsPerSecond(ceiling);
  return markdownTable(
    ["measurement", "events", "pages", "seconds", "pages/s", "events/s", "ratio to bound"],
    [
      [
        "moto FilterLogEvents, plain pager",
        fmt.int(pager.events),
        pager.pages,
        fmt.fixed(pager.seconds),
        fmt.fixed(pager.pagesPerSecond, 2),
        fmt.int(pager.eventsPerSecond),
        "-",
      ],
      ["Loki ceiling (raised, protobuf)", "-", "-", "-", "-", fmt.int(ceiling.eventsPerSecond), "-"],
      [
        `replay pacing default (${fmt.fixed(DEFAULT_PACING.bytesPerSecond / 1024 / 1024)} MiB/s at ${fmt.int(paced.bytesPerEvent)} B/event)`,
        "-",
        "-",
        "-",
        "-",
        fmt.int(paced.eventsPerSecond),
        "-",
      ],
      ...[
        { run: backfill, pace: "default pace" },
        { run: backfillRaisedPace, pace: "pace raised to 1 GiB/s" },
      ].map(({ run, pace }) => [
        `backfill, ${pace} (${run.status}: ${fmt.int(run.pushed)} pushed, ${run.spilled} spilled, ${run.refused} refused)`,
        fmt.int(run.exported),
        String(run.pages),
        fmt.fixed(run.seconds),
        fmt.fixed(run.pages / run.seconds, 2),
        fmt.int(run.eventsPerSecond),
        fmt.ratio(run.eventsPerSecond / bound),
      ]),
    ],
  );
}

/** The raised JSON+gzip ceiling next to the real Loki 3.4.6 reference taken the same way. */
function referenceNote(ceilings: CeilingRow[]): string {
  const json = ceilings.find((row) => row.result.format === "json+gzip")?.result;
  if (!json) return "";
  return `The raised JSON+gzip ceiling is ${fmt.int((100 * json.eventsPerSecond) / REFERENCE_EVENTS_PER_SECOND)} % of the real Loki reference (${fmt.int(REFERENCE_EVENTS_PER_SECOND)} events/s, same line size, format and connections; the batches here also carry structured metadata), so the ratios below are taken against a ceiling of the same order as a real single-binary Loki on this kind of machine.`;
}

/** The replay step without the backfill's pacing, from the largest memory run. */
function replayUnpacedNote(results: MemoryResult[]): string {
  const largest = results.filter((result) => result.kind === "replay").sort((a, b) => b.events - a.events)[0];
  if (!largest) return "";
  return `For comparison, the replay-chunks task with its pacing raised (section 5) pushed ${fmt.int(largest.events)} events from S3 chunks into Loki in ${fmt.fixed(largest.seconds)} s: ${fmt.int(largest.events / largest.seconds)} events/s in one process (the same chunk under every key, so Loki de-duplicates; an upper bound for the replay step).`;
}

function memoryTable(results: MemoryResult[]): string {
  return markdownTable(
    ["function", "events", "peak RSS MB", "seconds"],
    results.map((result) => [
      result.kind === "shipper" ? "shipper (5,000-event invocations)" : "replay-chunks (20,000-event chunks)",
      fmt.int(result.events),
      fmt.fixed(result.maxRssMb),
      fmt.fixed(result.seconds),
    ]),
  );
}

interface SummaryInput {
  transformRows: TransformRow[];
  handlerPathRows: HandlerPathRow[];
  liveRaised: LiveRow;
  /** Absent when Loki could not be pinned (see bench/pinning.ts). */
  liveRaisedPinned: LiveRow | undefined;
  liveDefault: LiveRow;
  backfill: BackfillResult;
  backfillRaisedPace: BackfillResult;
  backfillBound: number;
  pager: PagerResult;
  memory: MemoryResult[];
  coldStart: ColdStartResult[];
}

type MissKind =
  | "transform"
  | "liveRaised"
  | "liveRaisedPinned"
  | "liveDefault"
  | "backfill"
  | "backfillDefaultPace"
  | "memory"
  | "bundle"
  | "coldStart";

function summarise(input: SummaryInput): { table: string; misses: { kind: MissKind; text: string }[] } {
  const rows: string[][] = [];
  const misses: { kind: MissKind; text: string }[] = [];
  const check = (kind: MissKind, target: string, measured: string, met: boolean, missedBy: string) => {
    rows.push([target, measured, met ? "met" : `missed: ${missedBy}`]);
    if (!met) misses.push({ kind, text: `${target}: measured ${measured}, ${missedBy}` });
  };
  checkTransform(input.transformRows, check);
  checkHandlerPath(input.handlerPathRows, check);
  checkLive(input, check);
  // The bound is only the binding one when the request's pace allows more: the raised-pace run.
  const backfillRatio = input.backfillRaisedPace.eventsPerSecond / input.backfillBound;
  check(
    "backfill",
    "backfill ≥ 0.8 of min(moto pager, ceiling), pace raised to the tenant",
    `${fmt.ratio(backfillRatio)} (${fmt.int(input.backfillRaisedPace.eventsPerSecond)} of ${fmt.int(input.backfillBound)} events/s)`,
    backfillRatio >= TARGETS.ratio && input.backfillRaisedPace.pushed === input.backfillRaisedPace.events,
    `${fmt.ratio(backfillRatio / TARGETS.ratio)} of the target ratio`,
  );
  const pacedRatio =
    input.backfill.eventsPerSecond / pacedEventsPerSecond(input.liveRaised.ceiling).eventsPerSecond;
  check(
    "backfillDefaultPace",
    "backfill at the request's default pace reaches that pace (2 MiB/s)",
    `${fmt.ratio(pacedRatio)} of it (${fmt.int(input.backfill.eventsPerSecond)} events/s), ${input.backfill.spilled} spilled`,
    pacedRatio >= TARGETS.ratio && input.backfill.pushed === input.backfill.events,
    `${fmt.ratio(pacedRatio / TARGETS.ratio)} of the target ratio`,
  );
  for (const kind of ["shipper", "replay"] as const) {
    const runs = input.memory.filter((result) => result.kind === kind).sort((a, b) => a.events - b.events);
    const small = runs[0] as MemoryResult;
    const large = runs.at(-1) as MemoryResult;
    const growth = large.maxRssMb / small.maxRssMb;
    const peak = Math.max(...runs.map((result) => result.maxRssMb));
    check(
      "memory",
      `${kind} peak RSS flat with run size and < ${TARGETS.rssMb} MB`,
      `${fmt.fixed(small.maxRssMb)} MB at ${fmt.int(small.events)}, ${fmt.fixed(large.maxRssMb)} MB at ${fmt.int(large.events)} events`,
      growth <= TARGETS.rssGrowth && peak < TARGETS.rssMb,
      peak >= TARGETS.rssMb ? `${fmt.fixed(peak - TARGETS.rssMb)} MB over` : `grows ×${fmt.ratio(growth)}`,
    );
  }
  const deployed = input.coldStart[0] as ColdStartResult;
  check(
    "bundle",
    "shipper bundle < 1 MB minified (as deployed)",
    `${fmt.int(deployed.bytes)} bytes, imported in ${fmt.int(deployed.importMsMedian)} ms`,
    deployed.bytes < TARGETS.bundleBytes,
    `${fmt.int(deployed.bytes - TARGETS.bundleBytes)} bytes over`,
  );
  check(
    "coldStart",
    `shipper bundle import < ${TARGETS.importMs} ms (as deployed)`,
    `${fmt.int(deployed.importMsMedian)} ms (median of ${deployed.repeat} × ${deployed.runs})`,
    deployed.importMsMedian < TARGETS.importMs,
    `${fmt.ratio(deployed.importMsMedian / TARGETS.importMs)} × the target`,
  );
  return { table: markdownTable(["target", "measured", "status"], rows), misses };
}

type Check = (kind: MissKind, target: string, measured: string, met: boolean, missedBy: string) => void;

/** Live shipping against the ceiling: shared cores and pinned (raised tenant), and the default tenant's limit. */
function checkLive(input: SummaryInput, check: Check): void {
  const ratioOf = ({ result, ceiling }: LiveRow) => result.eventsPerSecond / ceiling.eventsPerSecond;
  const measured = (row: LiveRow) =>
    `${fmt.ratio(ratioOf(row))} (${fmt.int(row.result.eventsPerSecond)} of ${fmt.int(row.ceiling.eventsPerSecond)} events/s)`;
  const raised: [MissKind, LiveRow | undefined, string, number][] = [
    ["liveRaised", input.liveRaised, "", TARGETS.ratio],
    [
      "liveRaisedPinned",
      input.liveRaisedPinned,
      ", Loki and the shipper pinned to a core each",
      TARGETS.pinnedRatio,
    ],
  ];
  for (const [kind, row, cores, target] of raised) {
    if (!row) continue;
    check(
      kind,
      `live shipping ≥ ${target} of the ceiling (raised tenant${cores})`,
      measured(row),
      ratioOf(row) >= target,
      `${fmt.ratio(ratioOf(row) / target)} of the target ratio`,
    );
  }
  const { result } = input.liveDefault;
  const lost = result.spilled + result.refused;
  const defaultRatio = ratioOf(input.liveDefault);
  check(
    "liveDefault",
    "live shipping reaches the default tenant's limit, nothing spilled or refused",
    `${fmt.ratio(defaultRatio)} of the limit as measured, ${result.spilled} spilled, ${result.refused} refused`,
    defaultRatio >= TARGETS.ratio && lost === 0,
    lost > 0 ? `${lost} events not stored` : `${fmt.ratio(defaultRatio / TARGETS.ratio)} of the target ratio`,
  );
}

/**
 * The transform's targets, in the default push format (protobuf+snappy, LOKI_PUSH_FORMAT): events/s
 * per core at 200-byte lines, MB/s per core at 1 KiB and above; and that the default is the faster
 * format on every measured 10,000-event payload (JSON+gzip is reported for comparison).
 */
function checkTransform(rows: TransformRow[], check: Check): void {
  const large = rows.filter((row) => row.events === 10_000);
  const of = (format: string, lineBytes: number) =>
    large.find((row) => row.format === format && row.lineBytes === lineBytes) as TransformRow;
  const at200 = of(DEFAULT_FORMAT, LINE_BYTES);
  check(
    "transform",
    `transform ≥ ${fmt.int(TARGETS.transformEventsPerCpuSecond)} events/s per core (${DEFAULT_FORMAT}, the default, 200 B)`,
    fmt.int(at200.eventsPerCpuSecond),
    at200.eventsPerCpuSecond >= TARGETS.transformEventsPerCpuSecond,
    `${fmt.ratio(at200.eventsPerCpuSecond / TARGETS.transformEventsPerCpuSecond)} of the target`,
  );
  for (const row of large.filter((entry) => entry.format === DEFAULT_FORMAT && entry.lineBytes >= 1_024)) {
    check(
      "transform",
      `transform ≥ ${TARGETS.transformMegabytesPerCpuSecond} MB/s per core (${DEFAULT_FORMAT}, ${fmt.int(row.lineBytes)} B)`,
      `${fmt.fixed(row.megabytesPerSecond)} MB/s`,
      row.megabytesPerSecond >= TARGETS.transformMegabytesPerCpuSecond,
      `${fmt.ratio(row.megabytesPerSecond / TARGETS.transformMegabytesPerCpuSecond)} of the target`,
    );
  }
  const slower = large.filter(
    (row) =>
      row.format === DEFAULT_FORMAT &&
      row.eventsPerCpuSecond < of("json+gzip", row.lineBytes).eventsPerCpuSecond,
  );
  check(
    "transform",
    `the default format (${DEFAULT_FORMAT}) is the faster one at every line size (10,000 events)`,
    large
      .filter((row) => row.format === DEFAULT_FORMAT)
      .map(
        (row) =>
          `${fmt.ratio(row.eventsPerCpuSecond / of("json+gzip", row.lineBytes).eventsPerCpuSecond)}× at ${fmt.int(row.lineBytes)} B`,
      )
      .join(", "),
    slower.length === 0,
    `slower at ${slower.map((row) => `${fmt.int(row.lineBytes)} B`).join(", ")}`,
  );
}

/** The whole handler path at 1 KiB lines, per CPU second (bench/handler-path.ts). */
function checkHandlerPath(rows: HandlerPathRow[], check: Check): void {
  const at1KiB = rows.find((row) => row.lineBytes === 1_024) as HandlerPathRow;
  check(
    "transform",
    `handler path ≥ ${fmt.int(TARGETS.handlerEventsPerCpuSecond)} events per CPU second (${DEFAULT_FORMAT}, 1,024 B)`,
    fmt.int(at1KiB.eventsPerCpuSecond),
    at1KiB.eventsPerCpuSecond >= TARGETS.handlerEventsPerCpuSecond,
    `${fmt.ratio(at1KiB.eventsPerCpuSecond / TARGETS.handlerEventsPerCpuSecond)} of the target`,
  );
}

/** What the code shows for each kind of miss, and what would close it (the transform's: transformFinding). */
const FINDINGS: Record<Exclude<MissKind, "transform">, string> = {
  liveRaised: [
    "**Live shipping, raised tenant.** Loki is not the bound here, the shipper's CPU is: the table's",
    '"events per CPU s" is the whole path\'s cost (decode, labels, encode, got, the event loop for',
    `${IN_FLIGHT} invocations) and all in-flight invocations share one Node process, on a machine whose two`,
    "cores also run the Loki test server and other work. In AWS each concurrent invocation has its own",
    "container, so the fleet's total is not bound by one core; but a Lambda function gets CPU in",
    "proportion to its memory (1,769 MB = one vCPU), so at the 512 MB the project deploys the shipper with, an",
    "invocation has 0.29 of a core: the per-core rate above, times 0.29, is what one invocation ships per",
    "second (section 7 prices it). The profile of live shipping (section 3) has the transform's frames on",
    "top; the push itself (got, sockets) costs little next to them. What speeds up the transform raises",
    "both; so would a larger memory size for high-volume log groups.",
  ].join("\n"),
  liveRaisedPinned: [
    "**Live shipping, pinned.** With Loki on one core and the shipper on the other, the ratio is the",
    "shipper's own: below the target, the shipping process's CPU (events per CPU s, the profile of section 3)",
    "or its waiting for Loki (one point query per push, the push itself) binds before Loki does.",
  ].join("\n"),
  liveDefault: [
    "**Live shipping, default tenant.** Loki answers 429 without Retry-After when the tenant is over its",
    "rate; the shipper's jittered backoff (from 250 ms) decides how close it stays to the limit and",
    "whether anything is spilled to S3 `spill/` after the last retry (kept for a replay, not lost).",
  ].join("\n"),
  backfill: [
    "**Backfill.** By default a backfill replays its chunks paced by `DEFAULT_PACING`",
    "(functions/core/delivery/pacing.ts): 2 MiB/s for the run and 1 MiB/s per stream, half of Loki's default tenant",
    "limit on purpose (room for live shipping); the request's `bytesPerSecond` and",
    "`perStreamBytesPerSecond` raise it. With the pace raised, the export binds. A slice's chunks are",
    "replayed while its export reads on, so the replay adds little after the last page; what is left is",
    "the run's FilterLogEvents budget (4 requests/s by default, under CloudWatch's ~5/s per account):",
    "the 12 or 13 pages of the hour slices take at least 2.75-3 s of it, while the plain pager, not",
    "budgeted, reads 10 pages in about 1.9 s (moto answers 5 or more pages a second). So at 4 requests/s",
    "the ratio cannot pass about 0.65 with hour slices, whatever the pipeline does, and even 10 full pages",
    "(the least 100,000 events take) need 2.25 s of budget, at most 0.84 with nothing else taking time.",
    "`npx node bench/backfill-section.ts --request '{\"requestsPerSecond\":25}'`",
    "shows the run without that bound. Longer slices (fuller pages, `--request '{\"sliceHours\":3}'`)",
    "take fewer requests and far fewer state transitions and invocations per slice.",
  ].join("\n"),
  backfillDefaultPace: [
    "**Backfill at the default pace.** The replay's pacer (a token bucket per run share and per stream)",
    "decides; a shortfall means the slices' shares go unused while fewer slices than the concurrency",
    "are replaying (the run's tail).",
  ].join("\n"),
  memory: [
    "**Memory.** Peak RSS is measured on bundled code with the heap flags of a 256 MB Lambda; run from",
    "the TypeScript sources the same process needs ~90 MB more (Node's type stripping).",
  ].join("\n"),
  bundle:
    "**Bundle.** It holds got, zod/mini, re2js, Powertools and the CloudWatch Logs and Lambda clients; S3, Secrets Manager and SSM come from the runtime.",
  coldStart: [
    "**Cold start.** What the import still loads: the CloudWatch Logs client (every batch reads its log",
    "group's tags, so it is created at import; Lambda, S3, Secrets Manager and SSM load on first use), got",
    "with its dependencies (every invocation pushes), Powertools' logger and metrics, re2js for the rules,",
    "and the configuration parsed with zod/mini. `npx node bench/cold-start-section.ts` repeats the",
    "measurement, which a busy machine makes noisy.",
  ].join("\n"),
};

/** What would shrink a frame found on top of the transform's profile. */
const REMEDIES: { frame: RegExp; text: string }[] = [
  {
    frame: /snappy|compressBlock/,
    text: "the snappy compressor (functions/core/loki/snappy.ts, twice snappyjs's speed): the benchmark's lines (random numbers between words) give it a short match every dozen bytes, its worst case. The native `snappy` package (napi-rs 7.4.3, prebuilt for linux x64 and arm64) took about 1.5 times its CPU on the same 1 KiB-line pushes here (it copies input and output across the addon boundary) and 50 ms to load, so the project's own stays.",
  },
  {
    frame: /garbage collector/,
    text: "garbage collection: the lines that `JSON.parse` creates live until they are pushed, so the young generation copies them and promotes them into old-space pages; a young generation larger than a payload lets them die young (`--max-semi-space-size=64` made the 1 KiB transform about a fifth faster here). Lambda's young-generation size comes from the memory size, and is small.",
  },
  {
    frame: /lambdaRequestId|RegExp: \^\\S|RegExp: "\(\?:requestId/,
    text: "the request-id regular expressions (`lambdaRequestId`) now run only after a cheap pre-test, i.e. on lines that carry an id; what remains is the match itself.",
  },
  {
    frame: /decodeSubscriptionData|parseArrayInPieces|zod|logEventProblems/,
    text: "decoding: `JSON.parse` of the payload (past 4 MiB its events in 64 KiB pieces, no string the size of the payload), and the copy of each event into a `LogEvent` (which keeps unknown fields out of the chunks kept in S3).",
  },
  {
    frame: /encodePushRequestProtobuf|encodeInto|measureEntry|writeEntry|utf8Write/,
    text: "protobuf encoding (functions/core/loki/push-protobuf.ts): one native UTF-8 write per line into a buffer kept between pushes, which copying the line into the body needs anyway.",
  },
  {
    frame: /buildStreams/,
    text: "`buildStreams` itself: one tracked entry per event (its size, its timestamp from the FNV-1a hash of the event id).",
  },
  {
    frame: /zlib|processChunkSync/,
    text: "gunzip of the payload (and gzip of JSON pushes, already at level 1): native zlib, inflating into one buffer of the size the gzip trailer announces. That buffer is fresh memory on every invocation (Node's zlib cannot inflate into a buffer kept between calls), and at 10 KiB lines (100 MB) the first touch of its pages costs about as much as the inflating.",
  },
];

/** How the transform got where it is, for the finding. */
const TRANSFORM_HISTORY = [
  "The first runs of this benchmark (this machine, 2026-11-25) measured ~72,000 (protobuf+snappy) and ~80,000",
  "(JSON+gzip) events/s per core, and ~160,000 / ~175,000 after the first hot-path changes. Then (issue 14): a",
  "snappy compressor and a protobuf writer of the project's own (DataView loads and Math.imul hashing; one",
  "buffer sized in a first pass instead of protobufjs's forks), gunzip into one chunk of the announced size,",
  "ASCII payloads read as Latin-1, request-id patterns behind pre-tests, metadata arrays shared by the events of",
  "an invocation and their encoded bytes reused. 250,000 events/s per core leaves 4 µs per event for base64,",
  "gunzip, JSON parse and shape check, a hash, stream building and an encode in JavaScript.",
  "",
  "At 1 KiB and 10 KiB lines the cost was memory touched for the first time (issue 25): on this machine,",
  "a microVM as Lambda's are, a page fault costs more than copying the page, and every invocation wrote its",
  "payload into three fresh buffers of its size (the gunzip output, the payload as one string, each push's",
  "protobuf) plus the snappy output. Now the events of a payload past 4 MiB are parsed in 64 KiB pieces",
  "(`parsePayload`; below that one parse measured a fifth faster in the handler at 200 B), the protobuf",
  "and snappy buffers are kept between pushes and the body copied out at its size (got clones the whole",
  "buffer under a body per request), and gunzip writes one chunk up to 256 MiB instead of 16 MiB chunks",
  "and their concatenation. Page faults per invocation: 2,000 to 760 at 1 KiB, 67,800 to 32,100 at 10 KiB.",
  "Measured before and after in one process, alternating (10,000 events, protobuf+snappy): 200 B 243,000 to",
  "257,000 events/s per core; 1 KiB 70-75 to 87-88 MB/s; 10 KiB 55 to 87 MB/s. Top frames at 1 KiB before:",
  "`compressBlock` 29 %, `latin1Slice` (the payload as one string) 17 %, zlib's inflate 15 %, the garbage",
  "collector 13 %; after: `compressBlock` 26-32 %, inflate 21-32 %, the collector 16-17 %, `parseArrayInPieces`",
  "5-7 %. At 10 KiB before: `compressBlock` 25 %, inflate 20 %, `latin1Slice` 20 %, `Buffer.concat` of the",
  "16 MiB chunks 19 %; after: inflate 43 %, `compressBlock` 33 %, the collector 8 %. The whole handler path",
  "(section 1's last table) at 1 KiB went from 34,000-48,000 to 54,000-60,000 events per CPU second on the same",
  "machine (alternate runs, load average 11): beside the transform, got's work per request (two per push, with",
  "the stored-entries query) and the handler's own bookkeeping take about 40 % of it.",
];

/** The transform finding, from the frames on top of this run's profile. */
function transformFinding(profiles: TransformProfile[]): string {
  const tops = profiles.map((profile) => ({
    lineBytes: profile.lineBytes,
    top: profile.frames.slice(0, 10),
  }));
  const named = tops.map(
    ({ lineBytes, top }) =>
      `at ${fmt.int(lineBytes)} B ${top
        .slice(0, 5)
        .map(
          (frame) => `\`${frame.frame.replace(/ \([^()]*:\d+\)$/, "")}\` ${fmt.fixed(frame.selfPercent)} %`,
        )
        .join(", ")}`,
  );
  const remedies = REMEDIES.filter((remedy) =>
    tops.some(({ top }) => top.some((frame) => remedy.frame.test(frame.frame))),
  );
  return [
    `**Transform.** The profiles (section 1) spread the time over the pipeline; on top ${named.join("; ")}.`,
    "What would shrink the frames on top:",
    "",
    ...remedies.map((remedy) => `- ${remedy.text}`),
    "",
    ...TRANSFORM_HISTORY,
  ].join("\n");
}

interface MarkdownInput {
  /** Which cores the pinned rows of sections 2 and 3 had. */
  pinning: string;
  machine: ReturnType<typeof machineInfo>;
  loadAtStart: string;
  loadAtEnd: string;
  endpoint: string;
  tenants: string;
  summary: string;
  misses: { kind: MissKind; text: string }[];
  transformText: string;
  ceilingText: string;
  liveText: string;
  backfillText: string;
  memoryText: string;
  coldStartText: string;
  costText: string;
  profiles: TransformProfile[];
  liveProfile: ProfileFrame[];
  replayUnpaced: string;
  referenceNote: string;
}

function renderMarkdown(input: MarkdownInput): string {
  const { machine } = input;
  const missKinds = [...new Set(input.misses.map((miss) => miss.kind))];
  return `# Benchmarks

How fast loki-shipper ships and backfills, measured against the ingest ceiling of the Loki endpoint in
the same run. Generated by \`npm run bench\` (bench/run.ts); do not edit by hand, run it again.

- Date: ${machine.date}
- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGb.toFixed(1)} GB memory, ${machine.platform}
- Node.js: ${machine.node}
- Load average (1/5/15 min) at the start: ${input.loadAtStart}; at the end: ${input.loadAtEnd}.
  The machine was shared with other work while this ran: wall-clock rates are lower than on an idle
  machine; the transform is reported per CPU second of its own process, which load affects less.
- Loki endpoint: ${input.endpoint}; tenants ${input.tenants}.
  Set \`LOKI_URL\` (and \`LOKI_TENANT_RAISED\`, \`LOKI_TENANT_DEFAULT\`) to measure another Loki.
- AWS: moto's server (scripts/moto-server.ts) on 127.0.0.1.

Reference: a real Loki 3.4.6 single binary on this kind of machine took 243,000 events/s (48.6 MB/s,
200-byte lines, JSON+gzip, 4 connections) with raised limits.

## Targets

${input.summary}

${
  missKinds.length === 0
    ? "All targets met."
    : `### Where targets are missed\n\n${input.misses.map((miss) => `- ${miss.text}`).join("\n")}\n\n${missKinds
        .map((kind) => (kind === "transform" ? transformFinding(input.profiles) : FINDINGS[kind]))
        .join("\n\n")}`
}

## 1. Shipper transform

Decode (base64, gunzip, JSON, shape check), labels from tags, pre-checks, deterministic timestamps,
streams, batching and encoding of one subscription payload; no network. Median of several runs after a
warm-up; events/s per core = events per CPU second (user + system) of the process.

${input.transformText}

${transformProfileSections(input.profiles)}

## 2. Ingest ceiling of the Loki endpoint

A minimal pusher (bench/ceiling.ts: node:http, keep-alive, ${CONNECTIONS} connections, the tenant in
\`X-Scope-OrgID\`, nothing else) sends pre-encoded batches shaped like the shipper's (one stream per push
of ≤ 1 MiB, 200-byte lines, \`log_stream\` and \`request_id\` structured metadata) as fast as the endpoint
takes them; a 429'd batch is sent again. The first 0.5 s (raised) or 2 s (default tenant: its 6 MB burst
is spent then) are not counted. "rate MiB/s" counts bytes as Loki's rate limiter does (line + metadata).
"cores": \`shared\` rows run with Loki and this process free to use both cores of the machine, taking CPU
from each other; \`pinned\` rows with ${input.pinning}, the same for section 3, so that live ÷ ceiling
measures the shipper rather than the machine. \`npx node bench/live-section.ts [--pinned]\` runs sections 2
and 3 alone (\`LOKI_BIN=/path/to/loki\` for a real Loki, started with the raised tenant's limits).

${input.ceilingText}

${input.referenceNote}

## 3. Live shipping end to end

\`shipSubscriptionEvent\` (the handler's core: decode, tags from CloudWatch with the cache, labels,
\`deliverEvents\` with its retries and spill to S3) on subscription payloads of ${SIZES.eventsPerPayload.toLocaleString("en-US")}
events of ${LINE_BYTES}-byte lines from 8 tagged log groups, ${IN_FLIGHT} invocations in flight, pushing
protobuf+snappy (the default), and once more JSON+gzip (\`LOKI_PUSH_FORMAT=json\`) to the raised tenant.
Invocations that finish in the first 2 s are not counted in the rate. The ratio is to the ceiling of
the same tenant, format and cores; "events per CPU s" = events per CPU second of the shipping process,
whole run. The shipper asks Loki, before each push, only whether the push's first entry is stored (a
one-nanosecond \`query_range\`, sent while the stream's previous push is in flight), and reads back the
push's whole range only when it is (a payload delivered again): see the README, "Loki's stream sharding".

${input.liveText}

### Profile of live shipping (raised tenant, in-process V8 profiler on a separate run), top frames by self time

${profileTable(input.liveProfile)}

## 4. Backfill end to end

\`runBackfillLocally\` (the backfill state machine in aws-local-stepfunctions): FilterLogEvents from moto
into S3 chunks, chunks replayed into Loki, with the request's defaults (4 FilterLogEvents requests/s,
4 slices at a time, 1-hour slices), into the raised tenant: once at the default replay pace (2 MiB/s),
once with \`bytesPerSecond\` and \`perStreamBytesPerSecond\` raised to 1 GiB/s, each on its own log group of
the same events. The bound is the slower of moto's page rate for a plain pager (no budget, no chunks)
and the raised ceiling. moto returns 10,000 events per page regardless of the 1 MB page limit of
CloudWatch, so its page rate flatters the pager for these lines.

${input.backfillText}

${input.replayUnpaced}

## 5. Memory

Peak RSS of a fresh process per run (VmHWM from /proc/self/status; on Linux
\`process.resourceUsage().maxRSS\` would report the forking parent's size), running bundled code with
Lambda's heap flags for a 256 MB function (\`${LAMBDA_256MB_FLAGS.join(" ")}\`): the shipper handling
invocation after invocation as a warm container does, and the replay-chunks task replaying one backfill
slice until done (pacing raised so the run is not rate-bound).

${input.memoryText}

## 6. Cold start

functions/shipper.ts bundled with esbuild as infra/constructs/node-function.ts has NodejsFunction do it
(LAMBDA_BUNDLE: minified, ESM, target node22, platform node, the \`require\` shim banner, a source map
without sources). The deployed bundle (\`runtimeModules("shipper")\` in infra/constructs/lambda-handlers.ts)
holds the CloudWatch Logs client, which every batch needs, cut down to what the shipper sends, and the
Lambda client, evaluated on the first look-up of a function (functions/core/deferred-client.ts); S3,
Secrets Manager and SSM, which only spills and Loki credentials need, come on first use from the SDK v3
that the Lambda runtime provides. Its size was checked against the shipper asset
\`npm run build\` writes (dist/lambda/shipper/index.mjs): the same within a few bytes. For comparison: the
whole SDK from the runtime (NodejsFunction's default on nodejs22.x), and the whole SDK bundled, which holds
all of every package the shipper may load (esbuild includes all of a package that is imported
dynamically). Import time = \`import()\` of the bundle in a fresh Node process run with
\`--enable-source-maps\` (the NODE_OPTIONS the construct sets), module scope included: configuration
parsed, the CloudWatch Logs client created. Import CPU = user + system time of that import, which a busy
machine inflates less than wall time; process time = spawn to exit. The bundles take turns, ${COLD_START.repeat}
rounds of ${COLD_START.runs} imports each, before moto and Loki start. The other functions' bundles follow, as
deployed (\`runtimeModules(name)\`, the same as dist/lambda/<name>/index.mjs), with the configuration their module
scope parses. \`npx node bench/cold-start-section.ts\` runs this section alone, the same way (the README's table
comes from it), with what the first use of each deferred client costs.

${input.coldStartText}

## 7. Cost per GB

What the pipeline adds in AWS per GB (2^30 bytes) of log lines, computed from this run's own counts, next
to what CloudWatch Logs charges for ingesting the same GB (which every option pays). Prices: public list
prices of ${PRICES.region} (Frankfurt) as of ${PRICES.date} (bench/cost.ts; update them there, the counts are
measured). Live shipping: the shipper's events per CPU second (section 3, raised tenant, protobuf+snappy)
on the ${fmt.fixed(SHIPPER_MEMORY_MB / 1769, 2)} vCPU that Lambda gives ${SHIPPER_MEMORY_MB} MB, as if every invocation were CPU-bound (waiting for
Loki adds to it), in invocations of ${SIZES.eventsPerPayload.toLocaleString("en-US")} events. Backfill: the raised-pace run of section 4,
counted while it ran: states entered (Step Functions Standard bills each as a transition), Lambda task
wall time at 512 MB (waits such as the FilterLogEvents budget last as long in Lambda; CPU-bound parts take
longer on a Lambda's 0.29 vCPU than here), S3 requests by price tier. Replay: the same run's chunks
replayed once more (replay source \`run\`), as a replay of \`spill/\` or \`rejected/\` reads them.
CloudWatch Logs API requests (FilterLogEvents) are not in the table.

${input.costText}
`;
}

await main();
