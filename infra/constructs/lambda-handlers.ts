import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The Lambda handlers in functions/, one function each. */
export const LAMBDA_HANDLERS = [
  "shipper",
  "backfill-plan",
  "backfill-export",
  "replay-plan",
  "replay-chunks",
  "finish-run",
  "register-log-groups",
] as const;

export type LambdaHandler = (typeof LAMBDA_HANDLERS)[number];

/**
 * esbuild settings shared by the synth-time bundling (NodeFunction) and the package build
 * (scripts/build.ts), so that both produce the same bundle.
 */
export const LAMBDA_BUNDLE = {
  target: "node22",
  minify: true,
  sourceMap: true,
  // File and line numbers are enough for stack traces; the sources themselves would triple the zip.
  sourcesContent: false,
  mainFields: ["module", "main"],
  // esbuild writes ESM; some dependencies still call require(), which ESM lacks.
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  // The nodejs22.x runtime provides the AWS SDK v3.
  external: ["@aws-sdk/*"],
} as const;

/** Where the code of a handler is: its TypeScript source, and the pre-built bundle when there is one. */
export interface HandlerCode {
  /** The handler's TypeScript file, bundled at synth time when there is no pre-built bundle. */
  readonly entry: string;
  /** A directory holding the pre-built `index.mjs` and its source map. */
  readonly bundleDirectory?: string;
}

/**
 * The installed package carries every handler pre-built in `dist/lambda/<name>/`, next to the
 * compiled construct, so that a consumer's synth needs no esbuild, lock file or TypeScript. A
 * clone of this repository has no such directory beside `infra/` and bundles the sources.
 */
export function handlerCode(name: LambdaHandler): HandlerCode {
  const bundleDirectory = fileURLToPath(new URL(`../../lambda/${name}/`, import.meta.url));
  const entry = fileURLToPath(new URL(`../../functions/${name}.ts`, import.meta.url));
  if (existsSync(`${bundleDirectory}index.mjs`)) return { entry, bundleDirectory };
  if (existsSync(entry)) return { entry };
  throw new Error(
    `The code of the ${name} Lambda is missing: neither ${bundleDirectory}index.mjs nor ${entry} exists. The installed loki-shipper package is incomplete: reinstall it.`,
  );
}
