import { startLokiTestServer, type TenantLimits } from "../loki-test-server/index.ts";

/** Runs the Loki test server in its own process for the benchmarks; prints its URL on the first line. */
const overrides = JSON.parse(process.argv[2] ?? "{}") as Record<string, Partial<TenantLimits>>;
const server = await startLokiTestServer({ port: 0, overrides });
process.stdout.write(`${server.url}\n`);
process.on("SIGTERM", () => {
  void server.close().then(() => process.exit(0));
});
