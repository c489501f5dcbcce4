/**
 * Section 4 of `npm run bench` alone, repeated: moto's plain pager, the raised tenant's protobuf
 * ceiling and the backfill with the pace raised, each repetition on a fresh log group of the same
 * events. Prints one line per repetition (with what the run used: state transitions, task
 * invocations, S3 requests) and the spread of the ratio to min(pager, ceiling), with
 * the load average. `npx node bench/backfill-section.ts [--quick] [--repeat N] [--events N]
 * [--request JSON]`: `--request '{"sliceHours":3}'` adds fields to the backfill request.
 */
import { parseArgs } from "node:util";
import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { startMotoServer } from "../scripts/moto-server.ts";
import { awsBed, createBucket } from "./aws-bed.ts";
import { type BackfillOptions, measureBackfill, measurePager, seedBackfillGroup } from "./backfill.ts";
import { measureCeiling } from "./ceiling.ts";
import { countWorkflowUsage } from "./cost.ts";
import { openLokiEndpoint } from "./loki-endpoint.ts";
import { loadAverage } from "./machine.ts";
import { fmt } from "./table.ts";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    repeat: { type: "string", default: "3" },
    events: { type: "string" },
    request: { type: "string", default: "{}" },
  },
});
const quick = args.quick === true;
const repeat = Number(args.repeat);
const events = Number(args.events ?? (quick ? 20_000 : 100_000));
const request = JSON.parse(args.request) as Record<string, unknown>;
const LINE_BYTES = 200;
const runLabel = `s${Date.now().toString(36)}`;

const moto = await startMotoServer();
const endpoint = await openLokiEndpoint(process.env);
const bed = awsBed(moto.endpoint);
const bucket = `bench-${runLabel}`;
try {
  await createBucket(bed, bucket);
  console.log(
    `load average ${loadAverage()}; ${fmt.int(events)} events of ${LINE_BYTES} B over 6 hours; request ${JSON.stringify(request)}`,
  );
  const ceiling = await measureCeiling({
    pushUrl: endpoint.pushUrl,
    tenant: endpoint.raisedTenant,
    format: "protobuf+snappy",
    connections: 4,
    durationMs: quick ? 5_000 : 10_000,
    warmUpMs: 500,
    batches: quick ? 40 : 300,
    lineBytes: LINE_BYTES,
    runLabel: `${runLabel}-ceiling`,
  });
  console.log(`Loki ceiling (raised, protobuf): ${fmt.int(ceiling.eventsPerSecond)} events/s`);
  const ratios: number[] = [];
  for (let run = 0; run < repeat; run += 1) {
    const options: BackfillOptions = {
      bed,
      bucket,
      pushUrl: endpoint.pushUrl,
      tenant: endpoint.raisedTenant,
      events,
      lineBytes: LINE_BYTES,
      hours: 6,
      runLabel: `${runLabel}-${run}`,
      pace: { bytesPerSecond: 1024 ** 3, perStreamBytesPerSecond: 1024 ** 3 },
      request,
    };
    const group = await seedBackfillGroup(options);
    const pager = await measurePager(bed, group.logGroup, group.startMs, group.endMs + 1);
    const usage = countWorkflowUsage(bed.s3);
    const pages = watchFilterLogEvents(bed.logs);
    const backfill = await measureBackfill(options, group, usage.deps);
    const used = usage.finish(backfill.pushed * LINE_BYTES);
    const pageStarts = pages.stop();
    const ratio = backfill.eventsPerSecond / Math.min(pager.eventsPerSecond, ceiling.eventsPerSecond);
    ratios.push(ratio);
    console.log(
      `run ${run + 1}: pager ${fmt.int(pager.eventsPerSecond)} events/s (${pager.pages} pages, ${fmt.fixed(pager.seconds)} s); backfill ${backfill.status} ${fmt.int(backfill.pushed)} pushed, ${backfill.pages} pages, ${fmt.fixed(backfill.seconds)} s, ${fmt.int(backfill.eventsPerSecond)} events/s; ratio ${fmt.ratio(ratio)}; load ${loadAverage()}; ${used.stateTransitions} state transitions, ${used.taskInvocations} task invocations (${fmt.fixed(used.taskSeconds)} s), S3 ${used.s3WriteRequests} PUT/LIST + ${used.s3ReadRequests} GET; ${pageTimes(pageStarts)}`,
    );
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  console.log(
    `ratio to min(pager, ceiling): min ${fmt.ratio(sorted[0] ?? 0)}, median ${fmt.ratio(sorted[Math.floor(sorted.length / 2)] ?? 0)}, max ${fmt.ratio(sorted.at(-1) ?? 0)}`,
  );
} finally {
  await endpoint.close();
  await moto.stop();
}

/** Records when each FilterLogEvents request starts, to see how the run's request budget paces it. */
function watchFilterLogEvents(logs: CloudWatchLogsClient): { stop: () => number[] } {
  const starts: number[] = [];
  const name = `bench-pages-${Math.random().toString(36).slice(2)}`;
  logs.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === "FilterLogEventsCommand") starts.push(performance.now());
      return next(args);
    },
    { step: "initialize", name },
  );
  return {
    stop: () => {
      logs.middlewareStack.remove(name);
      return starts;
    },
  };
}

function pageTimes(starts: number[]): string {
  const gaps = starts.slice(1).map((start, index) => start - (starts[index] as number));
  const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)] ?? 0;
  const span = (starts.at(-1) ?? 0) - (starts[0] ?? 0);
  return `FilterLogEvents requests started over ${fmt.fixed(span / 1000, 2)} s, median ${fmt.int(median)} ms apart`;
}
