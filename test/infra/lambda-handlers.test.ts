import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import {
  handlerCode,
  LAMBDA_BUNDLE,
  LAMBDA_HANDLERS,
  type LambdaHandler,
  runtimeModules,
} from "../../infra/constructs/lambda-handlers.ts";

const FUNCTIONS_DIR = new URL("../../functions/", import.meta.url);

describe("the Lambda handlers the package pre-builds", () => {
  it("are every handler file in functions/, so that none is left out of the package build", () => {
    const handlerFiles = readdirSync(FUNCTIONS_DIR)
      .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
      .map((file) => file.replace(/\.ts$/, ""));

    expect([...LAMBDA_HANDLERS].sort()).toEqual(handlerFiles.sort());
  });

  it("come from the TypeScript sources in a clone, which has no pre-built bundle beside infra/", () => {
    for (const name of LAMBDA_HANDLERS) {
      const code = handlerCode(name);

      expect(code.bundleDirectory).toBeUndefined();
      expect(existsSync(code.entry)).toBe(true);
      expect(code.entry.endsWith(`/functions/${name}.ts`)).toBe(true);
    }
  });
});

/** What esbuild puts in a handler's bundle (its inputs) and what the bundle still imports. */
async function handlerBundle(external: readonly string[], name: LambdaHandler = "shipper") {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`../../functions/${name}.ts`, import.meta.url))],
    outfile: `${name}.mjs`,
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "node",
    target: LAMBDA_BUNDLE.target,
    mainFields: [...LAMBDA_BUNDLE.mainFields],
    external: [...external],
    logLevel: "silent",
  });
  const [output] = Object.values(result.metafile.outputs);
  if (!output) throw new Error("esbuild wrote no bundle");
  return { inputs: Object.keys(result.metafile.inputs), imports: output.imports };
}

/** The SDK packages a bundle imports at load and on first use (dynamic import). */
function sdkImports(imports: { path: string; kind: string }[]) {
  const sdk = imports.filter((entry) => entry.path.startsWith("@aws-sdk/"));
  const of = (kind: string) =>
    [...new Set(sdk.filter((entry) => entry.kind === kind).map((entry) => entry.path))].sort();
  return { atLoad: of("import-statement"), onFirstUse: of("dynamic-import") };
}

describe("the shipper's bundle, for its cold start", () => {
  const shipperBundle = (external: readonly string[]) => handlerBundle(external);

  it("imports only the CloudWatch Logs client at load; S3, Lambda, Secrets Manager, SSM and STS on first use", async () => {
    // With the whole SDK left out of the bundle, its imports show how the shipper's code loads them.
    const { imports } = await shipperBundle(LAMBDA_BUNDLE.external);
    const sdk = imports.filter((entry) => entry.path.startsWith("@aws-sdk/"));
    const atLoad = new Set(
      sdk.filter((entry) => entry.kind === "import-statement").map((entry) => entry.path),
    );
    const onFirstUse = new Set(
      sdk.filter((entry) => entry.kind === "dynamic-import").map((entry) => entry.path),
    );

    expect([...atLoad]).toEqual(["@aws-sdk/client-cloudwatch-logs"]);
    expect([...onFirstUse].sort()).toEqual([
      "@aws-sdk/client-lambda",
      "@aws-sdk/client-s3",
      "@aws-sdk/client-secrets-manager",
      "@aws-sdk/client-ssm",
      "@aws-sdk/client-sts",
    ]);
  });

  it("bundles the CloudWatch Logs and Lambda clients and leaves S3, Secrets Manager, SSM and STS to the runtime", async () => {
    const { inputs, imports } = await shipperBundle(runtimeModules("shipper"));
    const bundledSdk = new Set(
      inputs.flatMap((path) => /node_modules\/(@aws-sdk\/client-[^/]+)\//.exec(path)?.[1] ?? []),
    );

    expect([...bundledSdk].sort()).toEqual(["@aws-sdk/client-cloudwatch-logs", "@aws-sdk/client-lambda"]);
    expect(
      imports.filter((entry) => entry.path.startsWith("@aws-sdk/") && entry.kind === "import-statement"),
    ).toEqual([]);
  });

  it("carries zod/mini, not full zod's classic API", async () => {
    const { inputs } = await shipperBundle(runtimeModules("shipper"));

    expect(inputs.some((path) => path.includes("node_modules/zod/v4/mini/"))).toBe(true);
    expect(inputs.filter((path) => path.includes("node_modules/zod/v4/classic/"))).toEqual([]);
  });
});

describe("the workflow functions' and the registrar's bundles, for their cold start", () => {
  const WORKFLOW_FUNCTIONS = LAMBDA_HANDLERS.filter(
    (name) => name !== "shipper" && name !== "register-log-groups",
  );

  it.each(WORKFLOW_FUNCTIONS)(
    "%s imports CloudWatch Logs and S3 at load; Lambda and tagging, for function labels, on first use; no full zod",
    async (name) => {
      const { inputs, imports } = await handlerBundle(runtimeModules(name), name);

      expect(inputs.filter((path) => path.includes("node_modules/zod/v4/classic/"))).toEqual([]);

      const { atLoad, onFirstUse } = sdkImports(imports);
      expect(atLoad).toEqual(["@aws-sdk/client-cloudwatch-logs", "@aws-sdk/client-s3"]);
      expect(onFirstUse).toEqual(
        expect.arrayContaining(["@aws-sdk/client-lambda", "@aws-sdk/client-resource-groups-tagging-api"]),
      );
    },
  );

  it("the registrar parses its configuration with zod/mini and carries no full zod", async () => {
    const { inputs, imports } = await handlerBundle(
      runtimeModules("register-log-groups"),
      "register-log-groups",
    );

    expect(inputs.some((path) => path.includes("node_modules/zod/v4/mini/"))).toBe(true);
    expect(inputs.filter((path) => path.includes("node_modules/zod/v4/classic/"))).toEqual([]);
    expect(sdkImports(imports).atLoad).toEqual(["@aws-sdk/client-cloudwatch-logs"]);
  });
});
