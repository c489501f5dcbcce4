import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadLocalWorkflow } from "../../cli/commands/workflows.ts";
import { describeFailure, EXIT_BAD_INPUT } from "../../cli/errors.ts";
import { ConfigError } from "../../functions/core/errors.ts";

const BIN = new URL("../../bin/loki-shipper.mjs", import.meta.url).pathname;

/** Runs the package's bin on this Node, made to report another version (there is no Node 18 here). */
function runBinAs(
  nodeVersion: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const fakeVersion = `data:text/javascript,Object.defineProperty(process.versions,"node",{value:"${nodeVersion}"})`;
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", fakeVersion, BIN, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

describe("the CLI on Node.js versions it does not support", () => {
  it("answers one line naming Node.js 20 on an older Node, and exit code 2", async () => {
    const result = await runBinAs("18.19.0", ["--help"]);

    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe("error: loki-shipper needs Node.js 20 or later; this is Node.js 18.19.0\n");
  });

  it("refuses --local on Node 20 with one line naming Node.js 22 (aws-local-stepfunctions needs it)", async () => {
    const failure = await loadLocalWorkflow("20.20.2").then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(failure).toBeInstanceOf(ConfigError);
    expect(describeFailure(failure)).toEqual({
      line: "error: --local needs Node.js 22 or later (aws-local-stepfunctions runs the state machines); this is Node.js 20.20.2: run it with Node.js 22, or without --local to run in AWS",
      exitCode: EXIT_BAD_INPUT,
    });
  });

  it("loads the local state-machine runner on Node 22", async () => {
    const local = await loadLocalWorkflow("22.23.3");

    expect(typeof local.runBackfillLocally).toBe("function");
    expect(typeof local.runReplayLocally).toBe("function");
  });
});
