import { existsSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { handlerCode, LAMBDA_HANDLERS } from "../../infra/constructs/lambda-handlers.ts";

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
