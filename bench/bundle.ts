import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { LAMBDA_BUNDLE } from "../infra/constructs/lambda-handlers.ts";

/** Scratch space of the benchmarks (git-ignored); inside the project so bundles resolve node_modules. */
export const BENCH_TMP = fileURLToPath(new URL("../.bench-tmp/", import.meta.url));

export interface BundleOptions {
  entry: string;
  outfile: string;
  minify: boolean;
  /** Packages left to the Lambda runtime (infra's runtimeModules); none: everything bundled. */
  external: readonly string[];
  /** Writes the source map beside the bundle, as the deployed functions have it. */
  sourceMap?: boolean;
}

/** Bundles with the settings of infra (LAMBDA_BUNDLE): ESM, node22, platform node, the require shim. */
export async function bundle(options: BundleOptions): Promise<{ bytes: number; outfile: string }> {
  mkdirSync(BENCH_TMP, { recursive: true });
  const result = await build({
    entryPoints: [options.entry],
    outfile: options.outfile,
    bundle: true,
    format: "esm",
    target: LAMBDA_BUNDLE.target,
    platform: "node",
    minify: options.minify,
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    banner: { js: LAMBDA_BUNDLE.banner },
    external: [...options.external],
    sourcemap: options.sourceMap === true,
    sourcesContent: LAMBDA_BUNDLE.sourcesContent,
    metafile: true,
    logLevel: "silent",
  });
  const output = Object.entries(result.metafile.outputs).find(([path]) => path.endsWith(".mjs"));
  return { bytes: output?.[1].bytes ?? 0, outfile: options.outfile };
}
