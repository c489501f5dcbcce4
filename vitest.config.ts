import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/moto.global.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more workers only add contention against moto and the Loki test server.
    maxWorkers: 2,
    // CI asks for a JSON report too, to print one closing line with the counts.
    reporters: process.env.VITEST_JSON_REPORT ? ["default", "json"] : ["default"],
    outputFile: process.env.VITEST_JSON_REPORT ? { json: process.env.VITEST_JSON_REPORT } : undefined,
  },
});
