/**
 * `npm run build`: writes dist/, what the npm package ships.
 *
 *   dist/infra/        the constructs as ESM JavaScript with .d.ts (the package's entry point)
 *   dist/cli/          the CLI (bin/loki-shipper.mjs runs dist/cli/main.js), and the part of
 *   dist/functions/    functions/core it uses, compiled to JavaScript for Node 20 and later
 *   dist/lambda/<name> each Lambda handler bundled and minified, with its source map
 *   dist/statemachines the ASL definitions
 *
 * Node does not strip TypeScript types under node_modules (and Node 20 not at all), so an
 * installed package must carry JavaScript only.
 */
import { spawnSync } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { LAMBDA_BUNDLE, LAMBDA_HANDLERS, runtimeModules } from "../infra/constructs/lambda-handlers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DIST = `${ROOT}dist/`;

function compileTypeScript(): void {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", `${ROOT}tsconfig.build.json`], { stdio: "inherit" });
  if (result.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${result.status})`);
}

/**
 * tsc rewrites `./x.ts` to `./x.js` in the JavaScript it writes (rewriteRelativeImportExtensions)
 * but not in declaration files; a consumer's TypeScript then looks for `.ts` files that the
 * package does not ship. Point the declarations at the `.d.ts` beside each `.js`.
 */
function rewriteDeclarationImports(directory: string): void {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = `${directory}${entry.name}`;
    if (entry.isDirectory()) rewriteDeclarationImports(`${path}/`);
    else if (entry.name.endsWith(".d.ts")) {
      const text = readFileSync(path, "utf8");
      writeFileSync(path, text.replace(/(from\s+"\.{1,2}\/[^"]*)\.ts"/g, '$1.js"'));
    }
  }
}

/** One minified ESM bundle per handler, with the settings NodeFunction uses at synth time. */
async function bundleHandlers(): Promise<void> {
  await Promise.all(
    LAMBDA_HANDLERS.map((name) =>
      build({
        entryPoints: [`${ROOT}functions/${name}.ts`],
        outfile: `${DIST}lambda/${name}/index.mjs`,
        bundle: true,
        format: "esm",
        platform: "node",
        target: LAMBDA_BUNDLE.target,
        mainFields: [...LAMBDA_BUNDLE.mainFields],
        banner: { js: LAMBDA_BUNDLE.banner },
        external: [...runtimeModules(name)],
        minify: LAMBDA_BUNDLE.minify,
        sourcemap: LAMBDA_BUNDLE.sourceMap,
        sourcesContent: LAMBDA_BUNDLE.sourcesContent,
        logLevel: "warning",
      }),
    ),
  );
}

function copyStateMachines(): void {
  cpSync(`${ROOT}statemachines/`, `${DIST}statemachines/`, {
    recursive: true,
    filter: (source) => statSync(source).isDirectory() || source.endsWith(".asl.json"),
  });
}

rmSync(DIST, { recursive: true, force: true });
compileTypeScript();
rewriteDeclarationImports(DIST);
await bundleHandlers();
copyStateMachines();
for (const name of LAMBDA_HANDLERS) {
  const kib = statSync(`${DIST}lambda/${name}/index.mjs`).size / 1024;
  process.stdout.write(`dist/lambda/${name}/index.mjs  ${kib.toFixed(0)} KiB\n`);
}
