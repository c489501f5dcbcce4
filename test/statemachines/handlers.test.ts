import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConfigError } from "../../functions/core/errors.ts";

/** The task handlers parse their configuration at cold start (module load) and fail with one clear message. */
const HANDLERS = [
  "../../functions/backfill-plan.ts",
  "../../functions/backfill-export.ts",
  "../../functions/replay-plan.ts",
  "../../functions/replay-chunks.ts",
  "../../functions/finish-run.ts",
];

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
  vi.resetModules();
});

describe.each(HANDLERS)("%s", (file) => {
  it("fails at cold start naming BUCKET_NAME when it is missing", async () => {
    process.env = { ...saved, LOKI_URL: "http://127.0.0.1:3100", AWS_REGION: "eu-central-1" };
    delete process.env.BUCKET_NAME;
    await expect(import(file)).rejects.toThrow(/BUCKET_NAME: required: the bucket for chunks/);
  });

  it("fails at cold start listing every broken section at once, one line each", async () => {
    process.env = {
      ...saved,
      BUCKET_NAME: "b",
      LOKI_URL: "loki:3100",
      LABEL_MAX_COUNT: "many",
      AWS_REGION: "eu-central-1",
    };
    const failure = (await import(file).catch((error: unknown) => error)) as ConfigError;
    // The handler's module graph is loaded afresh (vi.resetModules): compare by name, not class.
    expect(failure).toMatchObject({ name: "ConfigError" });
    expect(failure.problems.map((line) => line.split(":")[0])).toEqual([
      "BUCKET_NAME",
      "LOKI_URL",
      "LABEL_MAX_COUNT",
    ]);
    expect(failure.message.split("\n")).toHaveLength(4);
  });

  it("fails at cold start naming a bad Loki setting", async () => {
    process.env = { ...saved, BUCKET_NAME: "bucket", LOKI_URL: "loki:3100", AWS_REGION: "eu-central-1" };
    await expect(import(file)).rejects.toThrow(/LOKI_URL/);
  });

  it("loads with a complete configuration and exports a handler", async () => {
    process.env = {
      ...saved,
      BUCKET_NAME: "bucket",
      LOKI_URL: "http://127.0.0.1:3100",
      AWS_REGION: "eu-central-1",
    };
    const module = (await import(file)) as { handler: unknown };
    expect(typeof module.handler).toBe("function");
  });
});
