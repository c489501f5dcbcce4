import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { BENCH_TMP, bundle } from "./bundle.ts";
import { fmt, markdownTable } from "./table.ts";

/**
 * Cold start of the shipper: its bundle built the way infra/constructs/node-function.ts has
 * NodejsFunction build it (esbuild, minified, ESM, node22, platform node; `@aws-sdk/*` external,
 * NodejsFunction's default for nodejs22.x, whose runtime provides the SDK v3), and the time a fresh
 * Node process takes to import it (module scope included: config parsing, clients).
 */

export interface ColdStartResult {
  variant: string;
  bytes: number;
  importMsMedian: number;
  /** Fastest and slowest import of the runs: the machine's noise shows here. */
  importMsMin: number;
  importMsMax: number;
  /** CPU time of the import (user + system): less sensitive than wall time to a busy machine. */
  importCpuMsMedian: number;
  processMsMedian: number;
  runs: number;
}

const run = promisify(execFile);
const SHIPPER = fileURLToPath(new URL("../functions/shipper.ts", import.meta.url));
const SHIPPER_ENV = {
  BUCKET_NAME: "loki-shipper-bench",
  AWS_REGION: "eu-central-1",
  LOKI_URL: "http://127.0.0.1:3100",
  POWERTOOLS_SERVICE_NAME: "shipper",
};

interface ImportSample {
  importMs: number;
  importCpuMs: number;
  processMs: number;
}

export async function measureColdStart(runs = 7): Promise<ColdStartResult[]> {
  const results: ColdStartResult[] = [];
  for (const sdkExternal of [true, false]) {
    const outfile = join(BENCH_TMP, sdkExternal ? "shipper-sdk-external.mjs" : "shipper-sdk-bundled.mjs");
    const { bytes } = await bundle({ entry: SHIPPER, outfile, minify: true, sdkExternal });
    const probe = writeProbe(outfile, sdkExternal ? "external" : "bundled");
    const samples: ImportSample[] = [];
    for (let index = 0; index < runs; index += 1) samples.push(await importOnce(probe));
    const importMs = samples.map((sample) => sample.importMs);
    results.push({
      variant: sdkExternal ? "@aws-sdk/* external (as deployed)" : "@aws-sdk/* bundled",
      bytes,
      importMsMedian: median(importMs),
      importMsMin: Math.min(...importMs),
      importMsMax: Math.max(...importMs),
      importCpuMsMedian: median(samples.map((sample) => sample.importCpuMs)),
      processMsMedian: median(samples.map((sample) => sample.processMs)),
      runs,
    });
  }
  return results;
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
  const { stdout } = await run(process.execPath, [probe], { env: { ...process.env, ...SHIPPER_ENV } });
  const processMs = performance.now() - started;
  return { ...(JSON.parse(stdout.trim()) as Omit<ImportSample, "processMs">), processMs };
}

export function coldStartTable(results: ColdStartResult[]): string {
  return markdownTable(
    [
      "bundle",
      "minified bytes",
      "import ms (median)",
      "import ms (min–max)",
      "import CPU ms (median)",
      "process ms (median)",
      "runs",
    ],
    results.map((result) => [
      result.variant,
      fmt.int(result.bytes),
      fmt.int(result.importMsMedian),
      `${fmt.int(result.importMsMin)}–${fmt.int(result.importMsMax)}`,
      fmt.int(result.importCpuMsMedian),
      fmt.int(result.processMsMedian),
      result.runs,
    ]),
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
