/**
 * Sections 2 and 3 of `npm run bench` alone: the Loki endpoint's ingest ceiling and live shipping,
 * on shared cores and pinned (Loki on core 0, this process on core 1) when the benchmark starts Loki
 * itself: the Loki test server, or a Loki binary with `LOKI_BIN`. Prints both tables and the ratios
 * with the load average. `npx node bench/live-section.ts [--quick] [--pinned]` (`--pinned`: only
 * the raised tenant's pinned rows, quicker).
 */
import { parseArgs } from "node:util";
import { startMotoServer } from "../scripts/moto-server.ts";
import { awsBed, createBucket } from "./aws-bed.ts";
import {
  ceilingTable,
  type LiveRow,
  liveTable,
  measureCeilings,
  measureLiveRows,
  prepareLiveSections,
} from "./live-sections.ts";
import { openLokiEndpoint } from "./loki-endpoint.ts";
import { loadAverage, machineInfo } from "./machine.ts";
import { fmt } from "./table.ts";

const { values: args } = parseArgs({
  options: { quick: { type: "boolean", default: false }, pinned: { type: "boolean", default: false } },
});
const runLabel = `ls${Date.now().toString(36)}`;
const machine = machineInfo();
console.log(
  `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; load average ${loadAverage()}`,
);

const moto = await startMotoServer();
const endpoint = await openLokiEndpoint(process.env);
try {
  const bed = awsBed(moto.endpoint);
  const bucket = `bench-${runLabel}`;
  await createBucket(bed, bucket);
  const prepared = await prepareLiveSections({ bed, bucket, endpoint, runLabel, quick: args.quick === true });
  if (args.pinned) {
    if (!prepared.pinning) throw new Error(`no pinned rows: ${prepared.notPinned}`);
    prepared.ceilings = prepared.ceilings.filter((plan) => plan.cores === "pinned");
    prepared.lives = prepared.lives.filter((plan) => plan.cores === "pinned");
  }
  console.log(
    `Loki endpoint: ${endpoint.description}; ${prepared.pinning?.description ?? prepared.notPinned}\n`,
  );
  const ceilings = await measureCeilings(prepared);
  console.log(`${ceilingTable(ceilings)}\n`);
  const lives = await measureLiveRows(prepared, ceilings);
  console.log(liveTable(lives));
  console.log(`\n${lives.map(ratioLine).join("\n")}\nload average at the end ${loadAverage()}`);
} finally {
  await endpoint.close();
  await moto.stop();
}

function ratioLine(row: LiveRow): string {
  const { result, ceiling, cores } = row;
  return `${result.tenant} ${ceiling.format} ${cores}: ${fmt.ratio(result.eventsPerSecond / ceiling.eventsPerSecond)} of the ceiling (${fmt.int(result.eventsPerSecond)} of ${fmt.int(ceiling.eventsPerSecond)} events/s), ${result.spilled} spilled, ${result.refused} refused`;
}
