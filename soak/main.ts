/**
 * The soak: live shipping, a backfill and the scheduled drain running together for N minutes
 * against moto and a Loki, under a seeded schedule of faults, then one audit. See SOAK.md.
 *
 *   npm run soak -- --minutes 2 --seed 7 [--lose-on-purpose]
 *   LOKI_BIN=/path/to/loki npm run soak -- --minutes 2   (a real Loki, killed -9 and restarted too)
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { Command } from "commander";
import { startLokiTestServer } from "../loki-test-server/index.ts";
import { startMotoServer } from "../scripts/moto-server.ts";
import { startRealLoki } from "../scripts/real-loki.ts";
import { startLokiFaultProxy } from "../test/helpers/loki-fault-proxy.ts";
import { type AuditResult, audit } from "./audit.ts";
import {
  backfill,
  createGroups,
  drain,
  HISTORY_HOURS,
  liveShipper,
  REGION,
  type SoakWorld,
  shipperEnv,
  spillBacklog,
  startLiveTraffic,
  writeHistory,
} from "./drivers.ts";
import { type AppliedFault, addS3Faults, type LokiControl, newFaultState, runSchedule } from "./faults.ts";
import { asyncInvoker, createFailureQueue } from "./lambda.ts";
import { buildSchedule, countByKind, scheduleText } from "./schedule.ts";
import { Timeline, timelineSvg } from "./timeline.ts";

interface Options {
  minutes: number;
  seed: number;
  rate: number;
  drainEvery: number;
  loseOnPurpose: boolean;
  out: string;
}

const program = new Command("soak")
  .description("live shipping, a backfill and the drain under seeded faults for N minutes, then an audit")
  .option("--minutes <n>", "how long the traffic and the faults run", Number, 2)
  .option("--seed <n>", "the fault schedule's seed", Number, 1)
  .option("--rate <n>", "events per second written to each log group", Number, 5)
  .option("--drain-every <seconds>", "the scheduled drain's period", Number, 60)
  .option(
    "--lose-on-purpose",
    "answer one spill chunk 'written' without writing it: the audit must fail",
    false,
  )
  .option("--out <dir>", "where report.md and timeline.svg go", ".soak");

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const stamp = (startedAt: number) => `[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s]`;

async function main(options: Options): Promise<number> {
  const durationMs = Math.round(options.minutes * 60_000);
  const lokiBin = process.env.LOKI_BIN;
  say(
    `Soak: ${options.minutes} min, seed ${options.seed}, Loki: ${lokiBin ? `real (${lokiBin})` : "the test server"}`,
  );
  const moto = await startMotoServer();
  // Loki's own chunk_idle_period (30m), not the tests' 4 s: with streams flushed and recreated in
  // every fault window, a kill -9 made Loki's WAL replay discard acknowledged entries as
  // "duplicates" (loki_ingester_wal_discarded_samples_total{reason="duplicate"}): data Loki lost
  // after its 204, which no client can keep.
  const realLoki = lokiBin ? await startRealLoki({ bin: lokiBin, chunkIdlePeriod: "30m" }) : undefined;
  const testLoki = realLoki ? undefined : await startLokiTestServer({});
  const lokiUrl = realLoki?.url ?? (testLoki?.url as string);
  const proxy = await startLokiFaultProxy(lokiUrl);
  try {
    Object.assign(process.env, {
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "soak",
      AWS_SECRET_ACCESS_KEY: "soak",
      // Clients the shipper code creates itself (e.g. the tagging API) talk to moto too.
      AWS_ENDPOINT_URL: moto.endpoint,
    });
    const aws = {
      endpoint: moto.endpoint,
      region: REGION,
      credentials: { accessKeyId: "soak", secretAccessKey: "soak" },
    };
    const bucket = "loki-shipper-soak";
    const cleanS3 = new S3Client({ ...aws, forcePathStyle: true });
    await cleanS3.send(
      new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }),
    );
    const sqs = new SQSClient(aws);
    const queueUrl = await createFailureQueue(sqs, "loki-shipper-soak-failures");
    const logs = new CloudWatchLogsClient(aws);
    const faults = newFaultState(options.loseOnPurpose);
    const historyEnd = Date.now();
    await createGroups(logs);
    say(
      `Wrote ${await writeHistory(logs, historyEnd)} events of history (${HISTORY_HOURS} h) for the backfill`,
    );

    const schedule = buildSchedule(options.seed, durationMs, realLoki !== undefined);
    say(scheduleText(options.seed, schedule));
    const startedAt = Date.now();
    const log = (line: string) => say(`${stamp(startedAt)} ${line}`);
    const timeline = new Timeline(startedAt);
    const world: SoakWorld = {
      logs,
      lambda: new LambdaClient(aws),
      s3: addS3Faults(new S3Client({ ...aws, forcePathStyle: true }), faults),
      bucket,
      env: shipperEnv(bucket, proxy.url),
      faults,
      timeline,
      log,
    };
    const lokiControl: LokiControl = realLoki
      ? { proxy, crashAndRestart: realLoki.crashAndRestart }
      : { proxy };
    const samplers = [
      setInterval(() => timeline.sampleRss(), 1_000),
      setInterval(() => {
        void spillBacklog({ s3: cleanS3, bucket }).then(
          (chunks) => timeline.backlog.push({ second: timeline.second(), chunks }),
          () => undefined,
        );
      }, 5_000),
    ];

    const running = runSchedule(schedule, lokiControl, faults, startedAt, log);
    const invoker = asyncInvoker(liveShipper(world), { sqs, url: queueUrl }, [3_000, 6_000], log);
    const stopLive = startLiveTraffic(world, invoker, options.rate);
    const runId = `soak-backfill-${options.seed}-${startedAt}`;
    const backfillFrom = historyEnd - HISTORY_HOURS * 3_600_000 - 60_000;
    const backfilling = backfill(world, runId, backfillFrom, historyEnd).then(
      (report) => report.status,
      (error: Error) => `failed: ${error.message}`,
    );
    void backfilling.then((status) => log(`backfill: ${status}`));
    let draining = Promise.resolve();
    const drainTimer = setInterval(() => {
      draining = draining.then(() =>
        drain(world).then(
          (report) => log(`scheduled drain: ${report.status}, ${report.totals.pushed} pushed`),
          (error: Error) => log(`scheduled drain failed: ${error.message.slice(0, 200)}`),
        ),
      );
    }, options.drainEvery * 1_000);

    await new Promise((resolve) => setTimeout(resolve, durationMs));
    log("traffic stops; faults off; waiting for invocations, retries, the backfill and the drain");
    await stopLive();
    clearInterval(drainTimer);
    await running.stop();
    await invoker.settled();
    await draining;
    let backfillStatus = await backfilling;
    if (backfillStatus !== "succeeded") {
      log(`backfill ended ${backfillStatus}: resuming it with the same run id, faults off`);
      backfillStatus = await backfill(world, runId, backfillFrom, historyEnd).then(
        (report) => report.status,
        (error: Error) => `failed: ${error.message}`,
      );
    }
    const finalDrain = await drain(world);
    log(`final drain (faults off): ${finalDrain.status}, ${finalDrain.totals.pushed} pushed`);
    for (const timer of samplers) clearInterval(timer);
    timeline.sampleRss();

    const result = await audit({
      logs,
      s3: cleanS3,
      bucket,
      sqs,
      queueUrl,
      lokiUrl,
      from: historyEnd - HISTORY_HOURS * 3_600_000 - 120_000,
      to: Date.now(),
    });
    const report = reportText(
      options,
      result,
      running.applied,
      timeline,
      invoker.counts,
      backfillStatus,
      faults.lostKeys,
    );
    say(report);
    await mkdir(options.out, { recursive: true });
    await writeFile(join(options.out, "report.md"), `${report}\n`);
    await writeFile(join(options.out, "timeline.svg"), await timelineSvg(timeline, running.applied));
    say(`Report: ${join(options.out, "report.md")}, timeline: ${join(options.out, "timeline.svg")}`);
    return result.missing.length > 0 || result.duplicated.length > 0 || result.strayInLoki > 0 ? 1 : 0;
  } finally {
    await proxy.close();
    await testLoki?.close();
    await realLoki?.stop();
    await moto.stop();
  }
}

function reportText(
  options: Options,
  result: AuditResult,
  applied: AppliedFault[],
  timeline: Timeline,
  counts: { invocations: number; failures: number; toQueue: number; overran: number },
  backfillStatus: string,
  lostKeys: string[],
): string {
  const rows: [string, string | number][] = [
    ["events written to CloudWatch", result.events],
    ["in Loki (own tenant, once)", result.inLoki],
    ...Object.entries(result.keptByReason).map(
      ([reason, count]) => [`kept in ${reason}`, count] as [string, number],
    ),
    ["in the failure queue", result.inQueue],
    ["missing", result.missing.length],
    ["duplicated", result.duplicated.length],
    ["stray entries in Loki", result.strayInLoki],
    ["in Loki and also kept (informative)", result.alsoKept],
  ];
  const faults = Object.entries(countByKind(applied))
    .map(([kind, count]) => `${kind} ×${count}`)
    .join(", ");
  const rss = timeline.rss;
  const quarter = (index: number) =>
    rss[Math.min(rss.length - 1, Math.floor((index * rss.length) / 4))]?.mb ?? 0;
  const lines = [
    `## Soak: ${options.minutes} min, seed ${options.seed}${options.loseOnPurpose ? ", losing on purpose" : ""}`,
    "",
    "| | events |",
    "|---|---:|",
    ...rows.map(([name, value]) => `| ${name} | ${value} |`),
    "",
    `Faults injected: ${faults || "none"}`,
    `Invocations: ${counts.invocations} (${counts.failures} failed, ${counts.overran} past their deadline, ${counts.toQueue} events to the failure queue)`,
    `Backfill: ${backfillStatus}`,
    `Peak RSS: ${timeline.peakRssMb().toFixed(0)} MB; RSS at 0/25/50/75/100 %: ${[0, 1, 2, 3, 4]
      .map((index) => quarter(index).toFixed(0))
      .join(" / ")} MB`,
  ];
  if (lostKeys.length > 0) lines.push(`Lost on purpose (spill chunks not written): ${lostKeys.join(", ")}`);
  for (const [title, names] of [
    ["Missing", result.missing],
    ["Duplicated", result.duplicated],
  ] as const) {
    if (names.length === 0) continue;
    lines.push("", `${title} (${names.length}${names.length > 20 ? ", first 20" : ""}):`);
    for (const name of names.slice(0, 20)) lines.push(`- ${name}`);
  }
  return lines.join("\n");
}

program.parse();
process.exitCode = await main(program.opts<Options>());
