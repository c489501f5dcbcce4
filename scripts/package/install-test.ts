import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { JS_APP, TS_APP } from "./consumer-apps.ts";
import { run, runOrFail } from "./run.ts";

/**
 * The packed tarball as a new user meets it: installed into an empty directory with aws-cdk-lib
 * and constructs, used from a JavaScript and a TypeScript CDK app, synthesised offline, and its
 * CLI run through npx, under each Node.js given.
 */

interface CfnResource {
  Type: string;
  Properties?: { Code?: { S3Key?: string }; Environment?: { Variables?: Record<string, string> } };
}

/** Installs the tarball and what the consumer apps need, at the versions this project tests with. */
export function installConsumer(directory: string, tarball: string, devDependencies: Record<string, string>) {
  writeFileSync(
    `${directory}/package.json`,
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  const pinned = ["aws-cdk-lib", "constructs", "cdk-nag", "typescript", "@types/node"].map(
    (name) => `${name}@${devDependencies[name]}`,
  );
  // --prefer-offline: the npm cache serves what this project's own install already fetched.
  runOrFail("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, ...pinned], {
    cwd: directory,
  });
  writeFileSync(`${directory}/${JS_APP.file}`, JS_APP.source);
  writeFileSync(`${directory}/${TS_APP.file}`, TS_APP.source);
  writeFileSync(`${directory}/tsconfig.json`, JSON.stringify(TS_APP.tsconfig, null, 2));
  // The TypeScript app is type-checked against the package's .d.ts, then run as JavaScript.
  runOrFail(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { cwd: directory });
}

/** Problems in a synthesised consumer stack: the shipper with its bundle, both workflows, the bucket. */
export function templateProblems(outdir: string, stackName: string): string[] {
  const template = JSON.parse(readFileSync(`${outdir}/${stackName}.template.json`, "utf8")) as {
    Resources: Record<string, CfnResource>;
  };
  const resources = Object.values(template.Resources);
  const ofType = (type: string) => resources.filter((resource) => resource.Type === type);
  const problems: string[] = [];
  const shipper = ofType("AWS::Lambda::Function").find(
    (fn) => fn.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === "loki-shipper",
  );
  const assetHash = String(shipper?.Properties?.Code?.S3Key ?? "").replace(/\.zip$/, "");
  if (!shipper) problems.push("no shipper function");
  else if (!existsSync(`${outdir}/asset.${assetHash}/index.mjs`)) {
    problems.push(`the shipper's asset ${outdir}/asset.${assetHash}/index.mjs is missing`);
  }
  const stateMachines = ofType("AWS::StepFunctions::StateMachine").length;
  if (stateMachines !== 2) problems.push(`${stateMachines} state machines instead of 2`);
  if (ofType("AWS::S3::Bucket").length === 0) problems.push("no bucket");
  return problems;
}

/** PATH with this Node first, so that npx and the bin's `#!/usr/bin/env node` run on it. */
function envFor(node: string): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ""}` };
}

/** Synthesises both apps and runs the CLI under one Node; returns the problems found. */
export function checkUnderNode(directory: string, node: string): string[] {
  const version = runOrFail(node, ["--version"]).stdout.trim();
  const problems: string[] = [];
  const apps = [
    { script: JS_APP.file, stackName: JS_APP.stackName },
    { script: `${TS_APP.tsconfig.compilerOptions.outDir}/app.js`, stackName: TS_APP.stackName },
  ];
  for (const app of apps) {
    const outdir = `${directory}/cdk.out-${version}-${app.stackName}`;
    const synth = run(node, [app.script, outdir], { cwd: directory });
    if (synth.status !== 0) problems.push(`${app.script}: synth failed:\n${synth.stderr}`);
    else problems.push(...templateProblems(outdir, app.stackName).map((line) => `${app.script}: ${line}`));
    if (synth.status === 0) process.stdout.write(`${version}  ${app.script}: synthesised ${app.stackName}\n`);
  }
  problems.push(...cliProblems(directory, node, version));
  return problems.map((line) => `${version}: ${line}`);
}

function cliProblems(directory: string, node: string, version: string): string[] {
  const problems: string[] = [];
  const env = envFor(node);
  for (const args of [["--help"], ["labels", "--help"]]) {
    const cli = run("npx", ["--no", "loki-shipper", ...args], { cwd: directory, env });
    if (cli.status !== 0)
      problems.push(`npx loki-shipper ${args.join(" ")} exited ${cli.status}: ${cli.stderr}`);
    else process.stdout.write(`${version}  npx loki-shipper ${args.join(" ")}: exit 0\n`);
  }
  if (Number(version.replace(/^v/, "").split(".")[0]) < 22) {
    // --local needs Node 22: an older Node gets one line that says so, and exit code 2.
    const local = ["backfill", "--local", "--log-group", "x", "--since", "1h", "--bucket", "b"];
    const cli = run("npx", ["--no", "loki-shipper", ...local], { cwd: directory, env });
    const lines = cli.stderr.trim().split("\n");
    if (cli.status !== 2 || lines.length !== 1 || !lines[0]?.includes("Node.js 22")) {
      problems.push(`--local on ${version} did not answer one line naming Node.js 22: ${cli.stderr}`);
    } else process.stdout.write(`${version}  npx loki-shipper backfill --local: ${lines[0]}\n`);
  }
  return problems;
}
