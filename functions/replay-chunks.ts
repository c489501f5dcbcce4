import type { Context } from "aws-lambda";
import { workflowTasksFromEnv } from "./core/workflow/workflow-env.ts";
import type { ReplayChunksEvent } from "./core/workflow/workflow-tasks.ts";

// Parsed at cold start: a configuration mistake fails the first invocation, naming the variable.
const tasks = workflowTasksFromEnv(process.env);

/** Replays the chunks of one unit (a backfill slice, or one log group of spill/, rejected/ or a run) into Loki in order, paced; returns continue until done. */
export async function handler(event: ReplayChunksEvent, context?: Pick<Context, "getRemainingTimeInMillis">) {
  return tasks.replayChunks(event, context?.getRemainingTimeInMillis());
}
