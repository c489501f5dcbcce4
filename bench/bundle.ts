import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** Scratch space of the benchmarks (git-ignored); inside the project so bundles resolve node_modules. */
export const BENCH_TMP = fileURLToPath(new URL("../.bench-tmp/", import.meta.url));

// esbuild writes ESM; some dependencies still call require(), which ESM lacks (as infra does).
const REQUIRE_SHIM =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

export interface BundleOptions {
  entry: string;
  outfile: string;
  minify: boolean;
  /** `@aws-sdk/*` left to the Lambda runtime, as NodejsFunction does by default on nodejs22.x. */
  sdkExternal: boolean;
}

/** Bundles like infra/constructs/node-function.ts: ESM, node22, platform node, the require shim. */
export async function bundle(options: BundleOptions): Promise<{ bytes: number; outfile: string }> {
  mkdirSync(BENCH_TMP, { recursive: true });
  const result = await build({
    entryPoints: [options.entry],
    outfile: options.outfile,
    bundle: true,
    format: "esm",
    target: "node22",
    platform: "node",
    minify: options.minify,
    mainFields: ["module", "main"],
    banner: { js: REQUIRE_SHIM },
    external: options.sdkExternal ? ["@aws-sdk/*"] : [],
    metafile: true,
    logLevel: "silent",
  });
  const output = Object.entries(result.metafile.outputs).find(([path]) => path.endsWith(".mjs"));
  return { bytes: output?.[1].bytes ?? 0, outfile: options.outfile };
}
