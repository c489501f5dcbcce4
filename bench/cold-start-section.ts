/**
 * Section 6 of `npm run bench` alone, repeated: the shipper bundle built as deployed (and with the
 * SDK bundled, for comparison), imported by fresh Node processes. Each repetition prints its table
 * with the load average; the machine's noise shows in the spread between repetitions.
 * `npx node bench/cold-start-section.ts [--repeat N] [--runs N]` (runs: imports per repetition,
 * 7 as in `npm run bench`).
 */
import { parseArgs } from "node:util";
import { coldStartTable, measureColdStart } from "./cold-start.ts";
import { loadAverage } from "./machine.ts";

const { values: args } = parseArgs({
  options: {
    repeat: { type: "string", default: "3" },
    runs: { type: "string", default: "7" },
  },
});
const repeat = Number(args.repeat);
const runs = Number(args.runs);
if (!(Number.isInteger(repeat) && repeat >= 1 && Number.isInteger(runs) && runs >= 1)) {
  console.error("Usage: npx node bench/cold-start-section.ts [--repeat N] [--runs N] (whole numbers ≥ 1)");
  process.exit(2);
}

console.log(`node ${process.version}, ${process.arch}`);
for (let round = 1; round <= repeat; round += 1) {
  const loadBefore = loadAverage();
  const results = await measureColdStart(runs);
  console.log(
    `\nrepetition ${round} of ${repeat}; load average ${loadBefore} before, ${loadAverage()} after\n`,
  );
  console.log(coldStartTable(results));
}
