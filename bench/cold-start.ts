import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { LAMBDA_BUNDLE, LAMBDA_HANDLERS, runtimeModules } from "../infra/constructs/lambda-handlers.ts";
import { BENCH_TMP, bundle } from "./bundle.ts";
import { fmt, markdownTable } from "./table.ts";

/**
 * Cold start of the Lambda functions: each bundle built the way infra/constructs/node-function.ts
 * has NodejsFunction build it (esbuild, minified, ESM, node22, platform node, with its source map;
 * the SDK packages it leaves to the runtime, which provides the SDK v3, resolved from the project's
 * node_modules), and the time a fresh Node process takes to import it (module scope included:
 * config parsing, clients), with `--enable-source-maps` as the construct sets in NODE_OPTIONS.
 * One method for `npm run bench` (section 6), bench/cold-start-section.ts and the README's table:
 * `repeat` rounds of `runs` imports of every bundle, taking turns.
 */

export interface ColdStartResult {
  variant: string;
  bytes: number;
  /** Median of every import (repeat × runs). */
  importMsMedian: number;
  /** Lowest and highest median of a round: the machine's noise shows here. */
  roundMedianMin: number;
  roundMedianMax: number;
  /** CPU time of the import (user + system): less sensitive than wall time to a busy machine. */
  importCpuMsMedian: number;
  processMsMedian: number;
  runs: number;
  repeat: number;
}

export interface ColdStartPlan {
  repeat: number;
  /** Imports of every bundle per round. */
  runs: number;
}

const run = promisify(execFile);
const SHIPPER = fileURLToPath(new URL("../functions/shipper.ts", import.meta.url));
/** Enough configuration for every handler's module scope (the workflow functions parse theirs at import). */
const HANDLER_ENV = {
  BUCKET_NAME: "loki-shipper-bench",
  AWS_REGION: "eu-central-1",
  LOKI_URL: "http://127.0.0.1:3100",
  POWERTOOLS_SERVICE_NAME: "loki-shipper-bench",
};

/** What NodeFunction puts in NODE_OPTIONS: stack traces through the bundle's source map. */
const DEPLOYED_NODE_OPTIONS = ["--enable-source-maps"];

interface ImportSample {
  importMs: number;
  importCpuMs: number;
  processMs: number;
}

/** One bundle to measure: an entry file and what its bundle leaves to the Lambda runtime. */
export interface ColdStartVariant {
  variant: string;
  entry: string;
  external: readonly string[];
}

/**
 * The shipper as deployed (its CloudWatch Logs and Lambda clients bundled, S3, Secrets Manager and
 * SSM from the runtime) and, for comparison, with the whole SDK from the runtime (NodejsFunction's
 * default) or the whole SDK bundled. `label` names another copy of the sources (not deployed).
 */
export function shipperVariants(entry = SHIPPER, label = ""): ColdStartVariant[] {
  return [
    {
      variant: `${label}CloudWatch Logs and Lambda clients bundled${label ? "" : " (as deployed)"}`,
      entry,
      external: runtimeModules("shipper"),
    },
    { variant: `${label}@aws-sdk/* external`, entry, external: LAMBDA_BUNDLE.external },
    { variant: `${label}@aws-sdk/* bundled`, entry, external: [] },
  ];
}

/** The other functions' bundles, as deployed (dist/lambda/<name>/index.mjs). */
export function otherHandlerVariants(): ColdStartVariant[] {
  return LAMBDA_HANDLERS.filter((name) => name !== "shipper").map((name) => ({
    variant: `${name} (as deployed)`,
    entry: fileURLToPath(new URL(`../functions/${name}.ts`, import.meta.url)),
    external: runtimeModules(name),
  }));
}

/**
 * Imports every variant `runs` times a round, taking turns so that the machine's load falls on all
 * alike, for `repeat` rounds.
 */
export async function measureColdStart(
  plan: ColdStartPlan,
  variants: ColdStartVariant[] = [...shipperVariants(), ...otherHandlerVariants()],
): Promise<ColdStartResult[]> {
  const { repeat, runs } = plan;
  const built = await Promise.all(
    variants.map(async (spec, index) => {
      const outfile = join(BENCH_TMP, `cold-start-${index}.mjs`);
      const { bytes } = await bundle({ ...spec, outfile, minify: true, sourceMap: true });
      return {
        spec,
        bytes,
        probe: writeProbe(outfile, `cold-start-${index}`),
        rounds: [] as ImportSample[][],
      };
    }),
  );
  for (let round = 0; round < repeat; round += 1) {
    for (const variant of built) variant.rounds.push([]);
    for (let index = 0; index < runs; index += 1)
      for (const variant of built) variant.rounds[round]?.push(await importOnce(variant.probe));
  }
  return built.map(({ spec, bytes, rounds }) => {
    const samples = rounds.flat();
    const roundMedians = rounds.map((round) => median(round.map((sample) => sample.importMs)));
    return {
      variant: spec.variant,
      bytes,
      importMsMedian: median(samples.map((sample) => sample.importMs)),
      roundMedianMin: Math.min(...roundMedians),
      roundMedianMax: Math.max(...roundMedians),
      importCpuMsMedian: median(samples.map((sample) => sample.importCpuMs)),
      processMsMedian: median(samples.map((sample) => sample.processMs)),
      runs,
      repeat,
    };
  });
}

/** A script that imports the bundle once and prints the wall and CPU time the import took. */
function writeProbe(outfile: string, name: string): string {
  const probe = join(BENCH_TMP, `import-${name}.mjs`);
  writeFileSync(
    probe,
    [
      "const started = performance.now();",
      "const cpuBefore = process.cpuUsage();",
      `const module = await import(${JSON.stringify(`./${outfile.split("/").at(-1)}`)});`,
      "const cpu = process.cpuUsage(cpuBefore);",
      "const importMs = performance.now() - started;",
      "if (typeof module.handler !== 'function') throw new Error('no handler exported');",
      "console.log(JSON.stringify({ importMs, importCpuMs: (cpu.user + cpu.system) / 1000 }));",
    ].join("\n"),
  );
  return probe;
}

async function importOnce(probe: string): Promise<ImportSample> {
  const started = performance.now();
  const { stdout } = await run(process.execPath, [...DEPLOYED_NODE_OPTIONS, probe], {
    env: { ...process.env, ...HANDLER_ENV },
  });
  const processMs = performance.now() - started;
  return { ...(JSON.parse(stdout.trim()) as Omit<ImportSample, "processMs">), processMs };
}

/** The SDK packages the shipper loads from the runtime on first use, with their client classes. */
const DEFERRED_CLIENTS: Record<string, string> = {
  "@aws-sdk/client-s3": "S3Client",
  "@aws-sdk/client-secrets-manager": "SecretsManagerClient",
  "@aws-sdk/client-ssm": "SSMClient",
};

export interface FirstUseResult {
  sdkPackage: string;
  msMedian: number;
  runs: number;
}

/**
 * What the cold start no longer pays but the first invocation that needs a deferred client does:
 * loading its package (with the runtime's SDK core, which the bundled CloudWatch Logs client does
 * not share) and creating the client, in a fresh process that has imported the deployed bundle.
 */
export async function measureFirstUse(runs = 7): Promise<FirstUseResult[]> {
  const outfile = join(BENCH_TMP, "first-use-shipper.mjs");
  await bundle({
    entry: SHIPPER,
    outfile,
    minify: true,
    external: runtimeModules("shipper"),
    sourceMap: true,
  });
  const results: FirstUseResult[] = [];
  for (const [sdkPackage, clientClass] of Object.entries(DEFERRED_CLIENTS)) {
    const probe = join(BENCH_TMP, "first-use-probe.mjs");
    writeFileSync(
      probe,
      [
        `await import(${JSON.stringify(`./${outfile.split("/").at(-1)}`)});`,
        "const started = performance.now();",
        `const sdk = await import(${JSON.stringify(sdkPackage)});`,
        `new sdk.${clientClass}({});`,
        "console.log(JSON.stringify({ importMs: performance.now() - started }));",
      ].join("\n"),
    );
    const samples: number[] = [];
    for (let index = 0; index < runs; index += 1) samples.push((await importOnce(probe)).importMs);
    results.push({ sdkPackage, msMedian: median(samples), runs });
  }
  return results;
}

export function firstUseTable(results: FirstUseResult[]): string {
  return markdownTable(
    ["loaded on first use", "ms (median)", "runs"],
    results.map((result) => [result.sdkPackage, fmt.int(result.msMedian), result.runs]),
  );
}

export function coldStartTable(results: ColdStartResult[]): string {
  return markdownTable(
    [
      "bundle",
      "minified bytes",
      "import ms (median)",
      "median of each round (min–max)",
      "import CPU ms (median)",
      "process ms (median)",
      "imports",
    ],
    results.map((result) => [
      result.variant,
      fmt.int(result.bytes),
      fmt.int(result.importMsMedian),
      `${fmt.int(result.roundMedianMin)}–${fmt.int(result.roundMedianMax)}`,
      fmt.int(result.importCpuMsMedian),
      fmt.int(result.processMsMedian),
      `${result.repeat} × ${result.runs}`,
    ]),
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
