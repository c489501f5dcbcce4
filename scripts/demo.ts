/**
 * The local demo, on embedded defaults: moto as AWS, the Loki test server as Loki. With
 * `--loki-url URL [--tenant T]` it ships to the user's own Loki instead (credentials from
 * LOKI_USERNAME and LOKI_PASSWORD, or LOKI_BEARER_TOKEN), to watch the events arrive in Grafana.
 *
 * 1. creates the two tagged sample functions (fun-python on python3.12, fun-node) and their
 *    untagged log groups in moto: the labels come from the functions' tags and runtime,
 * 2. writes a day of their history, then keeps writing an invocation's lines every few seconds,
 * 3. backfills the history through the backfill state machine run locally,
 * 4. ships the new events through the live shipper as CloudWatch's subscription would,
 * 5. runs {runtime="python", region="eu-central-1", name=~"fun.*"} against Loki over the whole
 *    history (a user's Loki: its last 2 h, see QueryWindow) and prints it beside what CloudWatch
 *    holds for that time, then two queries on the Lambda report figures (p99 duration, invocations
 *    near the memory size),
 * 6. keeps shipping until Ctrl-C (or stops after the first result with --once).
 */
import { relative } from "node:path";
import { parseArgs } from "node:util";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { DASHBOARD_FILE } from "../dashboards/loki-shipper.ts";
import { parseLokiTarget } from "../functions/core/loki/loki-target.ts";
import { type LokiTestServer, startLokiTestServer } from "../loki-test-server/index.ts";
import {
  backfillHistory,
  countEvents,
  HISTORY_HOURS,
  liveShipper,
  REGION,
  seedSampleHistory,
} from "./demo/demo-data.ts";
import { SAMPLE_FUNCTIONS } from "./demo/sample-functions.ts";
import { credentialsFromEnv, lokiHeaders, lokiRefusal, storeCredentials } from "./demo/user-loki.ts";
import { startMotoServer } from "./moto-server.ts";

const QUERY = '{runtime="python", region="eu-central-1", name=~"fun.*"}';
const TENANT = "demo";
const BUCKET = "loki-shipper-demo";
const LIVE_INTERVAL_MS = 5_000;

const { values: args } = parseArgs({
  options: {
    once: { type: "boolean", default: false },
    "loki-port": { type: "string", default: "3100" },
    "loki-url": { type: "string" },
    tenant: { type: "string" },
  },
});

/** Where the demo's own queries go: Loki's base URL and the headers it wants. */
interface QueryTarget {
  baseUrl: string;
  headers: Record<string, string>;
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const userLokiUrl = args["loki-url"];
  say(`Starting the local test bed: moto (AWS)${userLokiUrl ? "" : " and the Loki test server"} ...`);
  const moto = await startMotoServer();
  const embedded = userLokiUrl ? undefined : await startLoki(Number(args["loki-port"]));
  const stopAll = async () => {
    await embedded?.close();
    await moto.stop();
  };
  let stopping = false;
  process.once("SIGINT", () => {
    stopping = true;
    say("\nStopping the demo ...");
  });

  try {
    const tenant = args.tenant ?? (embedded ? TENANT : undefined);
    // The shipper code reads its settings from the environment, as it does in Lambda.
    Object.assign(process.env, {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "demo",
      AWS_SECRET_ACCESS_KEY: "demo",
      // Clients the shipper code creates itself (e.g. for the Loki secret) talk to moto too.
      AWS_ENDPOINT_URL: moto.endpoint,
      BUCKET_NAME: BUCKET,
      LOKI_URL: userLokiUrl ?? `${embedded?.url}/loki/api/v1/push`,
      POWERTOOLS_LOG_LEVEL: "WARN",
      POWERTOOLS_METRICS_DISABLED: "true",
    });
    if (tenant) process.env.LOKI_TENANT = tenant;
    else delete process.env.LOKI_TENANT;
    const aws = { endpoint: moto.endpoint, region: REGION };
    const queryTarget = await connectLoki(new SecretsManagerClient(aws));
    if (!queryTarget) return;
    const logs = new CloudWatchLogsClient(aws);
    const lambda = new LambdaClient(aws);
    const s3 = new S3Client({ ...aws, forcePathStyle: true });
    await s3.send(
      new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }),
    );

    const demoStart = Date.now();
    for (const [logGroup, written] of await seedSampleHistory(logs, aws, demoStart)) {
      say(`Wrote ${written} events of history (${HISTORY_HOURS} h) to ${logGroup}`);
    }

    say(`Backfilling the last ${HISTORY_HOURS} h through the backfill state machine (run locally) ...`);
    const target = { logs, lambda, s3, bucket: BUCKET, env: process.env };
    const report = await backfillHistory(target, demoStart);
    for (const group of report.groups) {
      say(`  ${group.logGroup}: ${group.exported} exported, ${group.pushed} pushed to Loki`);
    }

    const shipNew = liveShipper(target, demoStart);
    say(`Live shipper: ${await shipNew()} new events shipped through the subscription handler`);
    await printQuery(queryTarget, logs, queryWindow(embedded !== undefined, demoStart));
    await printReportFigures(queryTarget);
    say("");
    if (embedded) {
      say(`Loki is running at ${embedded.url} (tenant "${TENANT}"). Point Grafana or logcli at it:`);
      say(`  logcli --addr=${embedded.url} --org-id=${TENANT} query --since=25h '${QUERY}'`);
      say(
        `  Grafana: add a Loki data source with URL ${embedded.url} and the HTTP header X-Scope-OrgID: ${TENANT}`,
      );
    } else {
      say(`The events are in your Loki: in Grafana, open Explore on its data source and run ${QUERY}`);
    }
    say(
      `Dashboard: ${relative(process.cwd(), DASHBOARD_FILE)} (Grafana: Dashboards > New > Import > Upload dashboard JSON file;`,
    );
    say("  pick the Loki data source above, and a CloudWatch one for the pipeline-health row in AWS)");
    if (args.once) return;

    say(`Shipping new events every ${LIVE_INTERVAL_MS / 1000} s; press Ctrl-C to stop.`);
    while (!stopping) {
      await new Promise((resolve) => setTimeout(resolve, LIVE_INTERVAL_MS));
      if (stopping) break;
      const shipped = await shipNew();
      say(`${new Date().toISOString()}  shipped ${shipped} new events`);
    }
  } finally {
    await stopAll();
  }
}

/**
 * Hands the credentials to the shipper as a secret and checks that the Loki takes pushes; on a
 * refusal prints one line and answers undefined.
 */
async function connectLoki(secrets: SecretsManagerClient): Promise<QueryTarget | undefined> {
  const credentials = credentialsFromEnv(process.env);
  if (credentials) Object.assign(process.env, await storeCredentials(secrets, credentials));
  const target = parseLokiTarget(process.env);
  const headers = await lokiHeaders(target);
  const refusal = await lokiRefusal(target, headers);
  if (refusal) {
    process.stderr.write(`${refusal}\n`);
    process.exitCode = 1;
    return undefined;
  }
  return { baseUrl: target.pushUrl.replace(/\/loki\/api\/v1\/push$/, ""), headers };
}

async function startLoki(port: number): Promise<LokiTestServer> {
  try {
    return await startLokiTestServer({ port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    say(`Port ${port} is taken: the Loki test server takes a free port instead.`);
    return startLokiTestServer({ port: 0 });
  }
}

interface QueriedEntry {
  labels: Record<string, string>;
  ts: bigint;
  line: string;
}

/** Every entry the query matches from `from` on, paging over Loki's 5,000-entry limit. */
async function queryAll(loki: QueryTarget, query: string, from: number): Promise<QueriedEntry[]> {
  const entries: QueriedEntry[] = [];
  const seen = new Set<string>();
  let start = BigInt(from) * 1_000_000n;
  const end = BigInt(Date.now() + 60_000) * 1_000_000n;
  for (;;) {
    const url = new URL(`${loki.baseUrl}/loki/api/v1/query_range`);
    for (const [name, value] of Object.entries({
      query,
      start,
      end,
      limit: 5000,
      direction: "forward",
    })) {
      url.searchParams.set(name, String(value));
    }
    const response = await fetch(url, { headers: loki.headers });
    if (!response.ok) throw new Error(`query_range answered ${response.status}: ${await response.text()}`);
    const body = (await response.json()) as {
      data: { result: { stream: Record<string, string>; values: [string, string][] }[] };
    };
    let pageSize = 0;
    for (const stream of body.data.result) {
      for (const [ts, line] of stream.values) {
        pageSize += 1;
        const key = `${JSON.stringify(stream.stream)} ${ts} ${line}`;
        if (seen.has(key)) continue;
        seen.add(key);
        entries.push({ labels: stream.stream, ts: BigInt(ts), line });
        if (BigInt(ts) > start) start = BigInt(ts);
      }
    }
    // The next page starts at the newest timestamp seen (inclusive), so entries sharing it are not lost.
    if (pageSize < 5000) return entries.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  }
}

/** Two of the README's queries on the report figures the shipper attaches as structured metadata. */
const REPORT_QUERIES = [
  [
    "p99 duration (ms) per function, last hour",
    'quantile_over_time(0.99, {system_under_test="webshop"} | duration_ms != "" | unwrap duration_ms [1h]) by (name)',
  ],
  [
    "invocations above 90 % of their memory size, last hour",
    'sum by (name) (count_over_time({system_under_test="webshop"} | memory_utilization >= 90 [1h]))',
  ],
] as const;

async function printReportFigures(loki: QueryTarget): Promise<void> {
  for (const [title, query] of REPORT_QUERIES) {
    const url = new URL(`${loki.baseUrl}/loki/api/v1/query`);
    url.searchParams.set("query", query);
    const response = await fetch(url, { headers: loki.headers });
    if (!response.ok) throw new Error(`query answered ${response.status}: ${await response.text()}`);
    const body = (await response.json()) as {
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    say("");
    say(`Query: ${query}`);
    say(`  ${title}:`);
    if (body.data.result.length === 0) say("  none");
    for (const series of body.data.result) say(`  ${series.metric.name}: ${series.value[1]}`);
  }
}

/**
 * What the demo's query covers. The Loki test server answers the whole backfilled day at once. A
 * real Loki answers just-pushed entries only while they are younger than its
 * `querier.query_ingesters_within` (3 h by default; a single-binary Loki stops at 2 h 41 min, its
 * `ingester.query_store_max_look_back_period`), older ones once it has flushed them to its store
 * (after `chunk_idle_period`, 30 min by default): the demo asks a user's Loki for its last 2 hours.
 */
interface QueryWindow {
  from: number;
  hours: number;
}

const RECENT_HOURS = 2;

function queryWindow(embedded: boolean, demoStart: number): QueryWindow {
  const hours = embedded ? HISTORY_HOURS + 1 : RECENT_HOURS;
  return { from: (embedded ? demoStart : Date.now()) - hours * 3_600_000, hours };
}

async function printQuery(loki: QueryTarget, logs: CloudWatchLogsClient, window: QueryWindow): Promise<void> {
  const entries = await queryAll(loki, QUERY, window.from);
  // Loki splits results by structured metadata (request_id, log_stream) and the labels it adds
  // (service_name, detected_level): a stream here is one of the demo's, a log group and an hour.
  const perStream = new Map<string, number>();
  const perName = new Map<string, number>();
  for (const entry of entries) {
    const name = entry.labels.name ?? "?";
    const key = `name="${name}", time_shard="${entry.labels.time_shard}"`;
    perStream.set(key, (perStream.get(key) ?? 0) + 1);
    perName.set(name, (perName.get(name) ?? 0) + 1);
  }
  say("");
  say(`Query: ${QUERY}`);
  say(`  over the last ${window.hours} h (since ${new Date(window.from).toISOString()})`);
  say(
    `  ${entries.length} entries in ${perStream.size} streams (one per log group and UTC hour: the time_shard label)`,
  );
  for (const [name, count] of perName) {
    say(
      `  name="${name}": ${count} entries (${await comparedWithCloudWatch(logs, name, count, window.from)})`,
    );
  }
  const streamLines = [...perStream.entries()];
  const shown =
    streamLines.length <= 6 ? streamLines : [...streamLines.slice(0, 3), undefined, ...streamLines.slice(-3)];
  for (const line of shown) {
    say(line ? `    {${line[0]}}: ${line[1]}` : `    ... ${streamLines.length - 6} more`);
  }
  const newest = entries.slice(-5);
  const last = newest.at(-1);
  if (last) {
    const { time_shard: _shard, request_id: _request, detected_level: _level, ...labels } = last.labels;
    say(`  stream labels: ${JSON.stringify(labels)}`);
  }
  say("  newest lines:");
  for (const entry of newest) {
    say(`    ${new Date(Number(entry.ts / 1_000_000n)).toISOString()}  ${entry.line.split("\n")[0]}`);
  }
  const nodeQuery = '{runtime="nodejs", name=~"fun.*"}';
  const nodeEntries = await queryAll(loki, nodeQuery, window.from);
  const nodeCount = nodeEntries.length;
  say(`The Node.js sample is not in that answer; ${nodeQuery} holds its ${nodeCount} entries`);
  say(`  (${await comparedWithCloudWatch(logs, "fun-node", nodeCount, window.from)}).`);
  if (window.hours < HISTORY_HOURS) {
    say(
      `Only the last ${window.hours} h of the day: a Loki answers just-pushed entries older than a few hours (its`,
    );
    say(
      "  query_ingesters_within, 3 h by default) only once it has flushed them to its store, 30 min after their",
    );
    say("  stream's last push by default: the rest of the backfilled day shows in Grafana then.");
  }
}

/** How a count from Loki compares with the events the sample's log group holds from `from` on. */
async function comparedWithCloudWatch(
  logs: CloudWatchLogsClient,
  name: string,
  count: number,
  from: number,
): Promise<string> {
  const logGroup = SAMPLE_FUNCTIONS.find((sample) => sample.tags.name === name)?.logGroupName;
  if (logGroup === undefined) return "not a log group of the demo";
  const written = await countEvents(logs, logGroup, from);
  return written === count
    ? `all the events ${logGroup} holds for that time`
    : `${logGroup} holds ${written} events for that time`;
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
