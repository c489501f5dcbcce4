import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/moto.global.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more workers only add contention against moto and the Loki test server.
    maxWorkers: 2,
  },
});
