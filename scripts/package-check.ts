/**
 * `npm run test:package [-- --node PATH ...]`: the npm package as users get it.
 *
 * 1. builds dist/ and packs it; the tarball holds no tests, benchmark output or TypeScript
 *    sources, and stays under 5 MB;
 * 2. publint and attw (ESM-only profile) on the tarball, knip on the sources: nothing a shipped
 *    file imports is a devDependency;
 * 3. installs the tarball into an empty directory with aws-cdk-lib and constructs, synthesises a
 *    JavaScript and a TypeScript CDK app offline and runs `npx loki-shipper --help` and
 *    `labels --help`, under the Node.js running this script (Node 22 through npm) and each
 *    `--node` given (e.g. the system's Node 20).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { checkUnderNode, installConsumer } from "./package/install-test.ts";
import { runOrFail } from "./package/run.ts";
import { pack, packageProblems } from "./package/tarball.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const { values: args } = parseArgs({ options: { node: { type: "string", multiple: true, default: [] } } });
const say = (line: string) => process.stdout.write(`${line}\n`);

function fail(heading: string, problems: string[]): never {
  throw new Error(`${heading}\n${problems.map((problem) => `  ${problem}`).join("\n")}`);
}

function checkPackage(work: string): void {
  say("== build and pack");
  runOrFail("npm", ["run", "build"], { cwd: ROOT, show: true });
  const packed = pack(ROOT, work);
  say(
    `${packed.files.length} files, tarball ${(packed.size / 1e6).toFixed(2)} MB, unpacked ${(packed.unpackedSize / 1e6).toFixed(2)} MB`,
  );
  const contentProblems = packageProblems(packed);
  if (contentProblems.length > 0) fail("The packed contents are wrong:", contentProblems);

  say("== publint, attw, knip");
  runOrFail("publint", ["run", packed.tarball, "--strict"], { cwd: ROOT, show: true });
  runOrFail("attw", [packed.tarball, "--profile", "esm-only"], { cwd: ROOT, show: true });
  runOrFail("knip", ["--strict", "--dependencies"], { cwd: ROOT, show: true });

  say("== install test");
  const consumer = mkdtempSync(`${work}/consumer-`);
  const { devDependencies } = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as {
    devDependencies: Record<string, string>;
  };
  installConsumer(consumer, packed.tarball, devDependencies);
  say(`installed ${packed.tarball} into ${consumer}; the TypeScript app type-checks`);
  const problems = [process.execPath, ...args.node].flatMap((node) => checkUnderNode(consumer, node));
  if (problems.length > 0) fail("The installed package does not work:", problems);
  say("The package installs, synthesises and runs its CLI under every Node.js given.");
}

const work = mkdtempSync(`${tmpdir()}/loki-shipper-package-`);
try {
  checkPackage(work);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
