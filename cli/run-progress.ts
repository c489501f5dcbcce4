import { getJson, listKeys, runKeys, type Store } from "../functions/core/storage/run-store.ts";
import type { ReplayCheckpoint } from "../functions/core/workflow/replay-engine.ts";
import type { ExportCheckpoint } from "../functions/core/workflow/slice-export.ts";

/** Where a run stands: counts so far and the plan's units (a backfill's slices, a replay's groups). */
export interface RunProgress {
  /** Events exported from CloudWatch into chunks so far. */
  exported: number;
  /** Events Loki accepted so far. */
  pushed: number;
  /** FilterLogEvents answers that were throttled. */
  throttled: number;
  /** Units of the plan finished, and planned (0 until the plan is made). */
  unitsDone: number;
  unitsTotal: number;
}

export function noProgress(): RunProgress {
  return { exported: 0, pushed: 0, throttled: 0, unitsDone: 0, unitsTotal: 0 };
}

/** The plan as both workflows write it to runs/<run>/plan.json: a backfill counts slices, a replay lists units. */
interface StoredPlan {
  createdAt?: string;
  sliceCount?: number;
  units?: unknown[];
}

/**
 * A run's progress from what it keeps in S3: the plan, one export checkpoint per slice and one
 * replay checkpoint per unit (a unit is done once its replay checkpoint says so). Reads every
 * checkpoint: a few hundred small GETs for a large run. Undefined when the run has no plan yet.
 */
export async function readRunProgress(
  store: Store,
  runId: string,
): Promise<
  { progress: RunProgress; unit: "slices" | "log groups"; startedAt: number | undefined } | undefined
> {
  const plan = await getJson<StoredPlan>(store, runKeys.plan(runId));
  if (!plan) return undefined;
  const exports = await readCheckpoints<ExportCheckpoint>(store, runKeys.exportCheckpoints(runId));
  const replays = await readCheckpoints<ReplayCheckpoint>(store, runKeys.replayCheckpoints(runId));
  const sum = <T>(items: T[], count: (item: T) => number) =>
    items.reduce((total, item) => total + count(item), 0);
  return {
    progress: {
      exported: sum(exports, (checkpoint) => checkpoint.events),
      pushed: sum(replays, (checkpoint) => checkpoint.pushed),
      throttled: sum(exports, (checkpoint) => checkpoint.throttled),
      unitsDone: replays.filter((checkpoint) => checkpoint.done).length,
      unitsTotal: plan.sliceCount ?? plan.units?.length ?? 0,
    },
    unit: plan.sliceCount === undefined ? "log groups" : "slices",
    startedAt: plan.createdAt ? Date.parse(plan.createdAt) : undefined,
  };
}

async function readCheckpoints<T>(store: Store, prefix: string): Promise<T[]> {
  const checkpoints: T[] = [];
  for (const key of await listKeys(store, prefix)) {
    const checkpoint = await getJson<T>(store, key);
    if (checkpoint) checkpoints.push(checkpoint);
  }
  return checkpoints;
}
