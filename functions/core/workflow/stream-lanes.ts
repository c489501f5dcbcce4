import type { Logger } from "@aws-lambda-powertools/logger";
import { StreamBudget } from "../delivery/stream-budget.ts";
import { getJson, putJson, type Store } from "../storage/run-store.ts";
import { acquireLock, releaseLock } from "./replay-plan.ts";

/**
 * The run's stream budget in AWS, where every replay invocation is its own Lambda: the budget is cut
 * into `lanes` (the run's concurrency) of `perLane` streams each. An invocation takes a free lane
 * with a conditional write (the spill drain's lock), restores the streams that lane opened before
 * (saved in S3 by earlier invocations, child executions included), replays within them, saves them
 * and frees the lane. At most `concurrency` replays run at once, so a lane is free unless its
 * holder died; a lane lock outlives a Lambda's 15 minutes by a little only.
 */
export const LANE_LOCK_TTL_MS = 16 * 60_000;

export interface StreamLaneOptions {
  store: Store;
  runId: string;
  /** Who holds the lane: the replay unit, so that a retried invocation gets its own lane back. */
  holder: string;
  lanes: number;
  perLane: number;
  holdMs: number;
  now: () => number;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

const laneKey = (runId: string, lane: number) => `runs/${runId}/stream-lanes/${lane}.json`;
const laneLockKey = (runId: string, lane: number) => `runs/${runId}/stream-lanes/${lane}.lock`;

export async function withStreamLane<T>(
  options: StreamLaneOptions,
  work: (budget: StreamBudget) => Promise<T>,
): Promise<T> {
  const { store, runId, holder } = options;
  const budget = new StreamBudget(options.perLane, options.holdMs, {
    now: options.now,
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
  const lane = await takeLane(options);
  if (lane === undefined) {
    options.logger?.warn("no free stream lane: this invocation counts only the streams it opens", {
      runId,
      holder,
    });
    return work(budget);
  }
  budget.restore((await getJson<Record<string, number>>(store, laneKey(runId, lane))) ?? {});
  try {
    return await work(budget);
  } finally {
    await putJson(store, laneKey(runId, lane), budget.openStreams());
    await releaseLock(store, laneLockKey(runId, lane), holder);
  }
}

async function takeLane(options: StreamLaneOptions): Promise<number | undefined> {
  for (let lane = 0; lane < options.lanes; lane++) {
    const holder = await acquireLock(
      options.store,
      laneLockKey(options.runId, lane),
      options.holder,
      options.now(),
      LANE_LOCK_TTL_MS,
    );
    if (!holder) return lane;
  }
  return undefined;
}
