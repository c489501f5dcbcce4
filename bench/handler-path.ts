import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import type { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { S3Client } from "@aws-sdk/client-s3";
import { FunctionFactsCache } from "../functions/core/labels/function-lookup.ts";
import { LogGroupTagCache, logGroupArn } from "../functions/core/labels/log-group-tags.ts";
import { createLokiPushClient } from "../functions/core/loki/loki-target.ts";
import { parseShipperConfig, shipSubscriptionEvent } from "../functions/shipper/ship-subscription.ts";
import { profileInProcess, profileTable } from "./cpu-profile.ts";
import { fmt, markdownTable } from "./table.ts";
import { transformPayloadFor } from "./transform.ts";

/**
 * The live shipper's whole handler path per CPU second: `shipSubscriptionEvent` on one payload of
 * 10,000 events (decode, labels, rules, pre-checks, streams, protobuf + snappy, the stored-entries
 * query before each push, the push over HTTP with got) against a Loki stand-in in this process
 * that answers every push 204 and every query with no entries. The group's tags and its function's
 * facts are cached, as in a warm container: no AWS call is made. The stand-in's share of the CPU is
 * reading the request bodies. `npx node bench/handler-path.ts [--rounds N] [--profile]`
 */

const LOG_GROUP = "/aws/lambda/fun-orders";
const REGION = "eu-central-1";
const ACCOUNT = "123456789012";
const EVENTS = 10_000;
const LINE_BYTES = [200, 1_024, 10_240];
/** Line bytes per measured round at least, so that short payloads are timed over several invocations. */
const ROUND_BYTES = 20e6;

export interface HandlerPathRow {
  lineBytes: number;
  invocationsPerRound: number;
  eventsPerCpuSecond: number;
  megabytesPerCpuSecond: number;
  pushes: number;
}

/** A Loki that takes everything: 204 to pushes, an empty result to queries. */
async function startNoOpLoki(): Promise<{ server: Server; pushUrl: string }> {
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      if (request.method === "POST") response.writeHead(204).end();
      else
        response
          .writeHead(200, { "Content-Type": "application/json" })
          .end('{"status":"success","data":{"resultType":"streams","result":[]}}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { server, pushUrl: `http://127.0.0.1:${port}/loki/api/v1/push` };
}

/** A client the warm path must not call: the tags and function facts are cached. */
function noAwsCall<Client>(service: string): Client {
  const send = () => {
    throw new Error(`the handler-path bench expects no ${service} call: its look-ups are cached`);
  };
  return { send } as unknown as Client;
}

function shipperDeps(pushUrl: string) {
  const config = parseShipperConfig({
    AWS_REGION: REGION,
    BUCKET_NAME: "bench-handler-path",
    LOKI_URL: pushUrl,
    LOKI_TENANT: "bench",
  });
  const tagCache = new LogGroupTagCache();
  tagCache.set(
    logGroupArn(LOG_GROUP, { accountId: ACCOUNT, region: REGION }),
    { runtime: "nodejs", owner: "team-a", "team-name": "payments" },
    true,
  );
  const functionCache = new FunctionFactsCache();
  functionCache.set("fun-orders", { found: true, tags: { name: "fun-orders" }, runtime: "nodejs22.x" }, true);
  // Metrics are recorded and published as in the handler, but not printed.
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  const deps = {
    s3: noAwsCall<S3Client>("S3"),
    logs: noAwsCall<CloudWatchLogsClient>("CloudWatch Logs"),
    lambda: noAwsCall<LambdaClient>("Lambda"),
    loki: () => createLokiPushClient(config.loki),
    logger: new Logger({ serviceName: "loki-shipper-bench", logLevel: "SILENT" }),
    metrics: new Metrics({ namespace: "LokiShipperBench", serviceName: "loki-shipper-bench" }),
    tagCache,
    functionCache,
  };
  return { config, deps };
}

type Shipper = ReturnType<typeof shipperDeps>;

/** A whole Lambda timeout (60 s, the project's default) ahead at every call: no push is cut short. */
const INVOCATION = { getRemainingTimeInMillis: () => 60_000 };

/** One invocation; the pushes it made. Anything but a full delivery fails the bench. */
async function invoke(payload: { awslogs: { data: string } }, { config, deps }: Shipper): Promise<number> {
  const result = await shipSubscriptionEvent(payload, INVOCATION, config, deps);
  deps.metrics.publishStoredMetrics();
  if (result.outcome !== "delivered" || result.report.pushed !== EVENTS) {
    throw new Error(`expected ${EVENTS} events delivered, got ${JSON.stringify(result)}`);
  }
  return result.report.requests;
}

/** Runs the measured rounds; a profiler may wrap them (the payload is built and the JIT warm before). */
type RoundsRunner = (lineBytes: number, rounds: () => Promise<void>) => Promise<void>;

async function measureLineBytes(
  lineBytes: number,
  rounds: number,
  shipper: Shipper,
  runRounds: RoundsRunner,
): Promise<HandlerPathRow> {
  const payload = { awslogs: { data: transformPayloadFor(EVENTS, lineBytes) } };
  const invocations = Math.max(1, Math.round(ROUND_BYTES / (EVENTS * lineBytes)));
  for (let warmUp = 0; warmUp < 2; warmUp++) await invoke(payload, shipper);
  const cpuSeconds: number[] = [];
  let pushes = 0;
  await runRounds(lineBytes, async () => {
    for (let round = 0; round < rounds; round++) {
      const started = process.cpuUsage();
      for (let call = 0; call < invocations; call++) pushes = await invoke(payload, shipper);
      const cpu = process.cpuUsage(started);
      cpuSeconds.push((cpu.user + cpu.system) / 1e6 / invocations);
    }
  });
  const perInvocation = [...cpuSeconds].sort((a, b) => a - b)[Math.floor(rounds / 2)] as number;
  return {
    lineBytes,
    invocationsPerRound: invocations,
    eventsPerCpuSecond: EVENTS / perInvocation,
    megabytesPerCpuSecond: (EVENTS * lineBytes) / 1e6 / perInvocation,
    pushes,
  };
}

/** The handler path at each line size, median of `rounds` rounds after two warm-up invocations. */
export async function measureHandlerPath(
  rounds = 3,
  runRounds: RoundsRunner = (_lineBytes, run) => run(),
): Promise<HandlerPathRow[]> {
  const { server, pushUrl } = await startNoOpLoki();
  try {
    const shipper = shipperDeps(pushUrl);
    const rows: HandlerPathRow[] = [];
    for (const lineBytes of LINE_BYTES)
      rows.push(await measureLineBytes(lineBytes, rounds, shipper, runRounds));
    return rows;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

export function handlerPathTable(rows: HandlerPathRow[]): string {
  return markdownTable(
    ["events", "line B", "events per CPU s", "MB/s per CPU s", "pushes", "invocations per round"],
    rows.map((row) => [
      fmt.int(EVENTS),
      fmt.int(row.lineBytes),
      fmt.int(row.eventsPerCpuSecond),
      fmt.fixed(row.megabytesPerCpuSecond),
      row.pushes,
      row.invocationsPerRound,
    ]),
  );
}

/** With `--profile`, the top frames of each line size's rounds (in-process V8 profiler). */
const profiledRounds: RoundsRunner = async (lineBytes, run) => {
  const frames = await profileInProcess(run, fileURLToPath(new URL("..", import.meta.url)), 15);
  console.log(
    `\nTop frames by self time, ${fmt.int(lineBytes)}-byte lines (profiled: slower than measured)\n`,
  );
  console.log(profileTable(frames));
};

if (import.meta.main) {
  const roundsAt = process.argv.indexOf("--rounds");
  const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 3;
  const profile = process.argv.includes("--profile");
  console.log(`node ${process.version}, ${process.arch}; median of ${rounds} rounds`);
  const rows = await measureHandlerPath(rounds, profile ? profiledRounds : undefined);
  console.log(`\n${handlerPathTable(rows)}`);
}
