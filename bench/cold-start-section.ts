/**
 * Section 6 of `npm run bench` alone, repeated: the shipper bundle built as deployed (and with the
 * SDK bundled, for comparison), imported by fresh Node processes. Each repetition prints its table
 * with the load average; the machine's noise shows in the spread between repetitions.
 * Then what the first invocation that needs S3, Secrets Manager or SSM pays to load it.
 * `--against REF` measures the shipper of a git revision too (its functions/ from `git archive`,
 * bundled with today's settings), taking turns with this one: before and after under the same load.
 * `npx node bench/cold-start-section.ts [--repeat N] [--runs N] [--against REF]` (runs: imports
 * per repetition and bundle, 7 as in `npm run bench`).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_TMP } from "./bundle.ts";
import {
  coldStartTable,
  firstUseTable,
  measureColdStart,
  measureFirstUse,
  shipperVariants,
} from "./cold-start.ts";
import { loadAverage } from "./machine.ts";

const USAGE =
  "Usage: npx node bench/cold-start-section.ts [--repeat N] [--runs N] [--against REF] (N: whole numbers ≥ 1)";
const { values: args } = parseArgs({
  options: {
    repeat: { type: "string", default: "3" },
    runs: { type: "string", default: "7" },
    against: { type: "string" },
  },
});
const repeat = Number(args.repeat);
const runs = Number(args.runs);
if (!(Number.isInteger(repeat) && repeat >= 1 && Number.isInteger(runs) && runs >= 1)) {
  console.error(USAGE);
  process.exit(2);
}

/** The functions/ tree of `ref`, written under .bench-tmp/ so that its imports resolve node_modules. */
function checkOutFunctions(ref: string): string {
  const commit = execFileSync("git", ["rev-parse", "--short", `${ref}^{commit}`], {
    encoding: "utf8",
  }).trim();
  const directory = join(BENCH_TMP, `ref-${commit}`);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  execFileSync("sh", ["-c", `git archive ${commit} functions | tar -x -C "${directory}"`]);
  return commit;
}

const variants = shipperVariants();
if (args.against) {
  const commit = checkOutFunctions(args.against);
  const entry = join(BENCH_TMP, `ref-${commit}`, "functions", "shipper.ts");
  const name = commit.startsWith(args.against) ? commit : `${args.against} (${commit})`;
  variants.push(...shipperVariants(entry, `${name}, `));
}
console.log(`node ${process.version}, ${process.arch}`);
for (let round = 1; round <= repeat; round += 1) {
  const loadBefore = loadAverage();
  const results = await measureColdStart(runs, variants);
  console.log(
    `\nrepetition ${round} of ${repeat}; load average ${loadBefore} before, ${loadAverage()} after\n`,
  );
  console.log(coldStartTable(results));
}
console.log(`\nThen, after the import (load average ${loadAverage()}):\n`);
console.log(firstUseTable(await measureFirstUse(runs)));
