import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { BENCH_TMP, bundle } from "./bundle.ts";

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

export async function measureColdStart(runs = 7): Promise<ColdStartResult[]> {
  const results: ColdStartResult[] = [];
  for (const sdkExternal of [true, false]) {
    const outfile = join(BENCH_TMP, sdkExternal ? "shipper-sdk-external.mjs" : "shipper-sdk-bundled.mjs");
    const { bytes } = await bundle({ entry: SHIPPER, outfile, minify: true, sdkExternal });
    const probe = join(BENCH_TMP, `import-${sdkExternal ? "external" : "bundled"}.mjs`);
    writeFileSync(
      probe,
      [
        "const started = performance.now();",
        `const module = await import(${JSON.stringify(`./${outfile.split("/").at(-1)}`)});`,
        "if (typeof module.handler !== 'function') throw new Error('no handler exported');",
        "console.log(JSON.stringify({ importMs: performance.now() - started }));",
      ].join("\n"),
    );
    const importMs: number[] = [];
    const processMs: number[] = [];
    for (let index = 0; index < runs; index += 1) {
      const started = performance.now();
      const { stdout } = await run(process.execPath, [probe], { env: { ...process.env, ...SHIPPER_ENV } });
      processMs.push(performance.now() - started);
      importMs.push((JSON.parse(stdout.trim()) as { importMs: number }).importMs);
    }
    results.push({
      variant: sdkExternal ? "@aws-sdk/* external (as deployed)" : "@aws-sdk/* bundled",
      bytes,
      importMsMedian: median(importMs),
      processMsMedian: median(processMs),
      runs,
    });
  }
  return results;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
