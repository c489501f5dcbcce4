import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { StateMachine } from "aws-local-stepfunctions";
import { AccountRateBudgets, RateBudget } from "../functions/core/cloudwatch/rate-budget.ts";
import { defaultPacing, Pacer } from "../functions/core/delivery/pacing.ts";
import { ConfigError, InputError, LokiShipperError } from "../functions/core/errors.ts";
import { parseLokiTarget } from "../functions/core/loki/loki-target.ts";
import { getJson, runKeys } from "../functions/core/storage/run-store.ts";
import { parseBackfillRequest } from "../functions/core/workflow/backfill-request.ts";
import { parseReplayRequest } from "../functions/core/workflow/replay-plan.ts";
import type { RunReport } from "../functions/core/workflow/run-report.ts";
import {
  createWorkflowTasks,
  runStreamBudget,
  type WorkflowDeps,
} from "../functions/core/workflow/workflow-tasks.ts";
import { noProgress, type RunProgress } from "./run-progress.ts";

/**
 * Runs statemachines/backfill.asl.json and replay.asl.json on a laptop or in tests with the
 * `aws-local-stepfunctions` interpreter: the same definitions as in AWS, every Task bound to the
 * same task code as the Lambda handlers, in-process. Child executions of a large backfill run as
 * nested local executions of the same definition.
 */

/** The run failed; `report` holds what the run did up to the failure, when it got that far. */
export class WorkflowFailedError extends LokiShipperError {
  readonly report: RunReport | undefined;
  constructor(message: string, report: RunReport | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.report = report;
  }
}

/**
 * What the workflow tasks get in a Lambda function (`env` holds the `LOKI_*` and `LABEL_*`
 * settings), plus what only a local run needs. The shared budget, pacer and progress are the
 * runner's own.
 */
export interface LocalWorkflowDeps
  extends Omit<WorkflowDeps, "sharedRateBudgets" | "sharedPacer" | "onProgress" | "parsedEnv"> {
  /** What a Lambda invocation may spend before returning "continue" (default 10 minutes). */
  invocationBudgetMs?: number;
  /** Pause before a Retry, instead of the definition's intervals (tests use a few ms). */
  retryPauseMs?: number;
  /** Called for every state an execution enters (child executions included): Step Functions bills these transitions. */
  onStateEntered?: (stateName: string) => void;
  /** Wraps the task code of each Task state, keyed by state name (fault injection in tests). */
  wrapTask?: (
    stateName: string,
    task: (input: unknown) => Promise<unknown>,
  ) => (input: unknown) => Promise<unknown>;
}

/** Progress of a local run: counts, and the plan's slices (backfill) or units (replay) done. */
export type WorkflowProgress = RunProgress;
type ProgressDelta = Partial<RunProgress>;

const DEFINITIONS = {
  backfill: new URL("../statemachines/backfill.asl.json", import.meta.url),
  replay: new URL("../statemachines/replay.asl.json", import.meta.url),
};

/** The definition with every `${Placeholder}` replaced by a local stand-in ARN. */
export function loadDefinition(kind: keyof typeof DEFINITIONS): Record<string, unknown> {
  const text = readFileSync(DEFINITIONS[kind], "utf8").replace(/\$\{(\w+)\}/g, (_, name: string) =>
    name.endsWith("StateMachineArn")
      ? `arn:aws:states:eu-central-1:000000000000:stateMachine:local-${kind}`
      : `arn:aws:lambda:eu-central-1:000000000000:function:local-${name.replace(/FunctionArn$/, "")}`,
  );
  return JSON.parse(text) as Record<string, unknown>;
}

const machines = new Map<keyof typeof DEFINITIONS, StateMachine>();

/**
 * The interpreter of a definition, built once per process: building one validates the definition,
 * which takes 0.2-0.5 s, and the definitions do not change while the process runs.
 */
function stateMachine(kind: keyof typeof DEFINITIONS): StateMachine {
  let machine = machines.get(kind);
  if (!machine) {
    machine = new StateMachine(loadDefinition(kind) as never, { validationOptions: { checkArn: false } });
    machines.set(kind, machine);
  }
  return machine;
}

export async function runBackfillLocally(
  request: unknown,
  deps: LocalWorkflowDeps,
  onProgress?: (progress: WorkflowProgress) => void,
): Promise<RunReport> {
  const now = deps.now ?? Date.now;
  // Refuse bad input before anything starts; the plan step checks it again with the log groups.
  const parsed = parseBackfillRequest(request, { now: now() });
  const runId = parsed.runId ?? newRunId("backfill", now());
  const progress = noProgress();
  const advance = (delta: ProgressDelta) => report(progress, delta, onProgress);
  const tasks = createWorkflowTasks({
    ...taskDeps(deps),
    // All branches run in this process: one FilterLogEvents budget for all of them, per account and region.
    sharedRateBudgets: new AccountRateBudgets(
      () =>
        new RateBudget(parsed.requestsPerSecond, { burst: 1, ...(deps.sleep ? { sleep: deps.sleep } : {}) }),
    ),
    // ... and one stream budget: the run's share of the tenant's active streams.
    sharedStreamBudget: runStreamBudget({ ...deps.env, ...parsed.loki }, deps),
    onProgress: advance,
  });
  const machine = stateMachine("backfill");
  const budget = deps.invocationBudgetMs ?? 10 * 60_000;
  const handlers: Record<string, (input: unknown) => Promise<unknown>> = {
    Plan: async (input) => {
      const plan = await tasks.planBackfill(payloadOf(input));
      if (!plan.run.dryRun) advance({ unitsTotal: plan.run.sliceCount });
      return { Payload: plan };
    },
    LoadPart: async (input) => ({ Payload: await tasks.planBackfill(payloadOf(input)) }),
    ExportSlice: async (input) => {
      const exported = await tasks.exportSlice(payloadOf(input), budget);
      if (exported.replayed) advance({ unitsDone: 1 });
      return { Payload: exported };
    },
    ReplaySlice: async (input) => ({
      Payload: unitFinished(await tasks.replayChunks(payloadOf(input), budget), advance),
    }),
    FinishRun: async (input) => ({ Payload: await tasks.finishRun(payloadOf(input)) }),
    RecordFailure: async (input) => ({ Payload: await tasks.finishRun(payloadOf(input)) }),
    // startExecution.sync:2 answers with the child's output as JSON (not a string).
    RunPart: async (input) => {
      const { Input } = input as { Input: Record<string, unknown> };
      const part = (Input.loadPart as { partIndex: number }).partIndex;
      const output = await execute(
        machine,
        Input,
        `${runId}-part-${part}`,
        overrides(handlers, deps),
        runId,
        deps,
      );
      return { Status: "SUCCEEDED", Output: output };
    },
  };
  return finish(execute(machine, request, runId, overrides(handlers, deps), runId, deps), deps, runId);
}

export async function runReplayLocally(
  request: unknown,
  deps: LocalWorkflowDeps,
  onProgress?: (progress: WorkflowProgress) => void,
): Promise<RunReport> {
  const now = deps.now ?? Date.now;
  const parsed = parseReplayRequest(request);
  const runId = parsed.runId ?? newRunId(`replay-${parsed.source}`, now());
  const progress = noProgress();
  const advance = (delta: ProgressDelta) => report(progress, delta, onProgress);
  const tasks = createWorkflowTasks({
    ...taskDeps(deps),
    // One pacer for all branches of this process: the tenant's limits hold for their sum.
    sharedPacer: new Pacer(
      {
        bytesPerSecond: parsed.options.bytesPerSecond * parsed.options.concurrency,
        perStreamBytesPerSecond:
          parsed.options.perStreamBytesPerSecond ??
          defaultPacing(parseLokiTarget({ ...deps.env, ...parsed.loki }).shardStreams.desiredRateBytes)
            .perStreamBytesPerSecond,
      },
      deps.sleep ? { sleep: deps.sleep } : {},
    ),
    sharedStreamBudget: runStreamBudget({ ...deps.env, ...parsed.loki }, deps),
    onProgress: advance,
  });
  const machine = stateMachine("replay");
  const budget = deps.invocationBudgetMs ?? 10 * 60_000;
  const handlers: Record<string, (input: unknown) => Promise<unknown>> = {
    PlanReplay: async (input) => {
      const plan = await tasks.planReplay(payloadOf(input));
      advance({ unitsTotal: plan.units.length });
      return { Payload: plan };
    },
    ReplayChunks: async (input) => ({
      Payload: unitFinished(await tasks.replayChunks(payloadOf(input), budget), advance),
    }),
    FinishRun: async (input) => ({ Payload: await tasks.finishRun(payloadOf(input)) }),
    RecordFailure: async (input) => ({ Payload: await tasks.finishRun(payloadOf(input)) }),
  };
  return finish(execute(machine, request, runId, overrides(handlers, deps), runId, deps), deps, runId);
}

/** lambda:invoke hands the function `Parameters.Payload`; the override receives the whole `Parameters`. */
function payloadOf(input: unknown): never {
  return (input as { Payload: unknown }).Payload as never;
}

function taskDeps(deps: LocalWorkflowDeps): WorkflowDeps {
  const { invocationBudgetMs: _budget, retryPauseMs: _pause, wrapTask: _wrap, ...task } = deps;
  return task;
}

type Overrides = {
  taskResourceLocalHandlers: Record<string, (input: unknown) => Promise<unknown>>;
  retryIntervalOverrides?: Record<string, number>;
};

function overrides(
  handlers: Record<string, (input: unknown) => Promise<unknown>>,
  deps: LocalWorkflowDeps,
): Overrides {
  const bound: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [name, handler] of Object.entries(handlers))
    bound[name] = deps.wrapTask ? deps.wrapTask(name, handler) : handler;
  const result: Overrides = { taskResourceLocalHandlers: bound };
  if (deps.retryPauseMs !== undefined) {
    result.retryIntervalOverrides = Object.fromEntries(
      Object.keys(handlers).map((name) => [name, deps.retryPauseMs as number]),
    );
  }
  return result;
}

async function execute(
  machine: StateMachine,
  input: unknown,
  executionName: string,
  runOverrides: Overrides,
  runId: string,
  { onStateEntered }: Pick<LocalWorkflowDeps, "onStateEntered">,
): Promise<unknown> {
  const execution = machine.run(input as never, {
    overrides: runOverrides as never,
    context: {
      Execution: {
        Id: `arn:aws:states:eu-central-1:000000000000:execution:local:${executionName}`,
        Name: executionName,
        Input: input,
        StartTime: new Date().toISOString(),
      },
      StateMachine: { Id: `local:${runId}`, Name: "local" },
    } as never,
  });
  if (!onStateEntered) return execution.result;
  const countStates = async () => {
    for await (const event of execution.eventLogs) {
      if (event.type === "StateEntered") onStateEntered(event.state.name);
    }
  };
  // The log ends with the execution: waiting for both counts every state before the result returns.
  const [result] = await Promise.all([execution.result, countStates()]);
  return result;
}

async function finish(running: Promise<unknown>, deps: LocalWorkflowDeps, runId: string): Promise<RunReport> {
  try {
    return (await running) as RunReport;
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause ?? error;
    const name = (cause as Error).name;
    const message = (cause as Error).message;
    const report = await getJson<RunReport>(
      { s3: deps.s3, bucket: deps.bucket },
      runKeys.report(runId),
    ).catch(() => undefined);
    // Bad input stays an input error for the caller (the CLI prints it and exits accordingly).
    if (name === "InputError") throw new InputError(message, { cause });
    if (name === "ConfigError") throw new ConfigError(message, { cause });
    throw new WorkflowFailedError(
      `Run ${runId} failed: ${name}: ${message}${report?.message ? ` (${report.message})` : ""}`,
      report,
      { cause },
    );
  }
}

function report(
  progress: RunProgress,
  delta: ProgressDelta,
  onProgress?: (progress: RunProgress) => void,
): void {
  progress.exported += delta.exported ?? 0;
  progress.pushed += delta.pushed ?? 0;
  progress.throttled += delta.throttled ?? 0;
  progress.unitsDone += delta.unitsDone ?? 0;
  if (delta.unitsTotal !== undefined) progress.unitsTotal = delta.unitsTotal;
  onProgress?.({ ...progress });
}

/** Counts a slice (or replay unit) whose replay task answered done; passes the answer on. */
function unitFinished<T extends { status: string }>(result: T, advance: (delta: ProgressDelta) => void): T {
  if (result.status === "done") advance({ unitsDone: 1 });
  return result;
}

function newRunId(prefix: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, "").slice(0, 15);
  return `${prefix}-${stamp}-${randomBytes(3).toString("hex")}`;
}
