import type { S3Client } from "@aws-sdk/client-s3";
import type { LocalWorkflowDeps } from "../cli/local-workflow.ts";
import { fmt, markdownTable } from "./table.ts";

/**
 * What a GB of logs costs in AWS on top of CloudWatch, from the benchmark's own counts: Lambda
 * GB-seconds, Step Functions state transitions and S3 requests per GB of log lines, priced with
 * public list prices. The counts are measured; the prices are constants to update when AWS changes them.
 */

/** Public list prices of eu-central-1 (Frankfurt), as the AWS pricing pages gave them in June 2025. */
export const PRICES = {
  region: "eu-central-1",
  date: "2025-06",
  /** Lambda on arm64 (Graviton), per GB-second and per request. */
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  /** Step Functions Standard workflows, per state transition. */
  stateTransition: 0.025 / 1000,
  /** S3 Standard: PUT, COPY, POST, LIST per request; GET and the others per request (DELETE is free). */
  s3WriteRequest: 0.0054 / 1000,
  s3ReadRequest: 0.00043 / 1000,
  /** CloudWatch Logs Standard class, data ingested, per GB. */
  cloudWatchIngestGb: 0.63,
  /** Data transfer out of AWS to the internet (first 10 TB a month), per GB: a Loki outside AWS. */
  transferOutGb: 0.09,
};

/** The deployed memory sizes (infra/constructs/loki-shipper.ts, workflows.ts). */
export const SHIPPER_MEMORY_MB = 512;
export const WORKFLOW_MEMORY_MB = 512;
/** Lambda gives a function one vCPU at 1,769 MB, and CPU in proportion to memory below it. */
const MB_PER_VCPU = 1769;
const GB = 1024 ** 3;

/** What one workflow run used, as counted while it ran locally. */
export interface WorkflowUsage {
  stateTransitions: number;
  /** Lambda task invocations and their wall time (child executions are not Lambda tasks). */
  taskInvocations: number;
  taskSeconds: number;
  s3WriteRequests: number;
  s3ReadRequests: number;
  /** Line bytes the run put into Loki. */
  lineBytes: number;
}

/** States that are not Lambda invocations (a child execution of the same definition). */
const NOT_LAMBDA = new Set(["RunPart"]);

/**
 * Counts a local workflow run's state transitions, Lambda task time and S3 requests. Returns the
 * deps to pass to runBackfillLocally / runReplayLocally and a function that ends the counting.
 */
export function countWorkflowUsage(s3: S3Client): {
  deps: Pick<LocalWorkflowDeps, "onStateEntered" | "wrapTask">;
  finish: (lineBytes: number) => WorkflowUsage;
} {
  const usage: WorkflowUsage = {
    stateTransitions: 0,
    taskInvocations: 0,
    taskSeconds: 0,
    s3WriteRequests: 0,
    s3ReadRequests: 0,
    lineBytes: 0,
  };
  const middlewareName = `bench-usage-${Math.random().toString(36).slice(2)}`;
  s3.middlewareStack.add(
    (next, context) => (args) => {
      const command = context.commandName ?? "";
      if (/^(Put|Copy|Post|List|CreateMultipart|UploadPart|CompleteMultipart)/.test(command))
        usage.s3WriteRequests += 1;
      else if (!command.startsWith("Delete")) usage.s3ReadRequests += 1;
      return next(args);
    },
    { step: "initialize", name: middlewareName },
  );
  return {
    deps: {
      onStateEntered: () => {
        usage.stateTransitions += 1;
      },
      wrapTask: (stateName, task) =>
        NOT_LAMBDA.has(stateName)
          ? task
          : async (input) => {
              const started = performance.now();
              try {
                return await task(input);
              } finally {
                usage.taskInvocations += 1;
                usage.taskSeconds += (performance.now() - started) / 1000;
              }
            },
    },
    finish: (lineBytes) => {
      s3.middlewareStack.remove(middlewareName);
      return { ...usage, lineBytes };
    },
  };
}

export interface LiveUsage {
  /** Events per CPU second of the shipping process (section 3). */
  eventsPerCpuSecond: number;
  eventsPerInvocation: number;
  lineBytes: number;
  /** Bytes on the wire per line byte (section 1, same payloads and format). */
  wireRatio: number;
}

interface CostRow {
  path: string;
  measured: string;
  dollars: number;
}

function liveRow(live: LiveUsage): CostRow {
  const eventsPerGb = GB / live.lineBytes;
  const vcpu = SHIPPER_MEMORY_MB / MB_PER_VCPU;
  const seconds = eventsPerGb / (live.eventsPerCpuSecond * vcpu);
  const gbSeconds = seconds * (SHIPPER_MEMORY_MB / 1024);
  const invocations = eventsPerGb / live.eventsPerInvocation;
  return {
    path: `live shipping (shipper at ${SHIPPER_MEMORY_MB} MB = ${fmt.fixed(vcpu, 2)} vCPU)`,
    measured: `${fmt.fixed(gbSeconds)} GB-s (${fmt.int(seconds)} s of CPU-bound invocations), ${fmt.int(invocations)} invocations of ${fmt.int(live.eventsPerInvocation)} events`,
    dollars: gbSeconds * PRICES.lambdaGbSecond + invocations * PRICES.lambdaRequest,
  };
}

function workflowRow(path: string, usage: WorkflowUsage): CostRow {
  const perGb = GB / usage.lineBytes;
  const transitions = usage.stateTransitions * perGb;
  const gbSeconds = usage.taskSeconds * (WORKFLOW_MEMORY_MB / 1024) * perGb;
  const invocations = usage.taskInvocations * perGb;
  const writes = usage.s3WriteRequests * perGb;
  const reads = usage.s3ReadRequests * perGb;
  return {
    path,
    measured: `${fmt.int(transitions)} state transitions, ${fmt.fixed(gbSeconds)} GB-s in ${fmt.int(invocations)} invocations, S3 ${fmt.int(writes)} PUT/LIST + ${fmt.int(reads)} GET`,
    dollars:
      transitions * PRICES.stateTransition +
      gbSeconds * PRICES.lambdaGbSecond +
      invocations * PRICES.lambdaRequest +
      writes * PRICES.s3WriteRequest +
      reads * PRICES.s3ReadRequest,
  };
}

/** The cost table: per GB of log lines, next to what CloudWatch charges for ingesting that GB. */
export function costTable(live: LiveUsage, backfill: WorkflowUsage, replay: WorkflowUsage): string {
  const rows = [
    liveRow(live),
    workflowRow("backfill (export to S3 chunks and replay into Loki)", backfill),
    workflowRow("replay of kept chunks (spill/, rejected/, a run)", replay),
  ];
  const ingest = PRICES.cloudWatchIngestGb;
  return markdownTable(
    ["per GB of log lines", "measured per GB", "USD per GB", "vs CloudWatch ingestion"],
    [
      ...rows.map((row) => [
        row.path,
        row.measured,
        fmt.fixed(row.dollars, 4),
        `${fmt.fixed((100 * row.dollars) / ingest, 2)} %`,
      ]),
      [
        "data transfer out, only for a Loki outside AWS",
        `${fmt.fixed(live.wireRatio, 2)} GB on the wire (protobuf+snappy)`,
        fmt.fixed(live.wireRatio * PRICES.transferOutGb, 4),
        `${fmt.fixed((100 * live.wireRatio * PRICES.transferOutGb) / ingest, 2)} %`,
      ],
      ["CloudWatch Logs ingestion (Standard), paid anyway", "1 GB ingested", fmt.fixed(ingest, 4), "100 %"],
    ],
  );
}
