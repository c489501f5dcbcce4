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

/**
 * The shipper's bundle carries the SDK clients a first batch typically needs: CloudWatch Logs (the
 * group's tags, every batch), cut down to what the shipper sends, loads in less than half the time
 * of the runtime's package; Lambda (the function behind `/aws/lambda/...`, function labels are on by
 * default) is evaluated on first use (functions/core/deferred-client.ts) and costs the import a few
 * milliseconds, against the runtime's package and SDK core loaded during that first batch. The
 * clients of rarer paths stay with the runtime and load on first use: S3 (spill/, rejected/,
 * malformed/), Secrets Manager and SSM (Loki credentials), STS (source accounts' reader roles),
 * tagging (not used by the shipper).
 * Bundled, each would come whole (a dynamic import takes all of a package) into every cold start.
 * Figures: BENCHMARKS.md, section 6.
 */
const SHIPPER_RUNTIME_SDK = [
  "@aws-sdk/client-s3",
  "@aws-sdk/client-secrets-manager",
  "@aws-sdk/client-ssm",
  "@aws-sdk/client-sts",
  "@aws-sdk/client-resource-groups-tagging-api",
] as const;

/** The packages a handler's bundle leaves to the Lambda runtime (LAMBDA_BUNDLE.external unless said). */
export function runtimeModules(name: LambdaHandler): readonly string[] {
  return name === "shipper" ? SHIPPER_RUNTIME_SDK : LAMBDA_BUNDLE.external;
}

/** Where the code of a handler is: its TypeScript source, and the pre-built bundle when there is one. */
export interface HandlerCode {
  /** The handler's TypeScript file, bundled at synth time when there is no pre-built bundle. */
  readonly entry: string;
  /** A directory holding the pre-built `index.mjs` and its source map. */
  readonly bundleDirectory?: string;
  /** What bundling `entry` leaves to the Lambda runtime (see runtimeModules). */
  readonly externalModules: readonly string[];
}

/**
 * The installed package carries every handler pre-built in `dist/lambda/<name>/`, next to the
 * compiled construct, so that a consumer's synth needs no esbuild, lock file or TypeScript. A
 * clone of this repository has no such directory beside `infra/` and bundles the sources.
 */
export function handlerCode(name: LambdaHandler): HandlerCode {
  const bundleDirectory = fileURLToPath(new URL(`../../lambda/${name}/`, import.meta.url));
  const entry = fileURLToPath(new URL(`../../functions/${name}.ts`, import.meta.url));
  const externalModules = runtimeModules(name);
  if (existsSync(`${bundleDirectory}index.mjs`)) return { entry, bundleDirectory, externalModules };
  if (existsSync(entry)) return { entry, externalModules };
  throw new Error(
    `The code of the ${name} Lambda is missing: neither ${bundleDirectory}index.mjs nor ${entry} exists. The installed loki-shipper package is incomplete: reinstall it.`,
  );
}
