/**
 * Section 6 of `npm run bench` alone, the same measurement (bench/cold-start.ts): every Lambda
 * bundle built as deployed (and the shipper with the SDK from the runtime or bundled, for
 * comparison), imported by fresh Node processes, `--repeat` rounds of `--runs` imports each (3 × 7
 * as in `npm run bench`), printed with the load average. Then what the first invocation that needs
 * S3, Secrets Manager or SSM pays to load it. `--against REF` measures the shipper of a git
 * revision too (its functions/ from `git archive`, bundled with today's settings), taking turns
 * with this one: before and after under the same load.
 * `npx node bench/cold-start-section.ts [--repeat N] [--runs N] [--against REF]`.
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
  otherHandlerVariants,
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
variants.push(...otherHandlerVariants());
console.log(`node ${process.version}, ${process.arch}`);
const loadBefore = loadAverage();
const results = await measureColdStart({ repeat, runs }, variants);
console.log(`\nload average ${loadBefore} before, ${loadAverage()} after\n`);
console.log(coldStartTable(results));
console.log(`\nThen, after the import (load average ${loadAverage()}):\n`);
console.log(firstUseTable(await measureFirstUse(runs)));
