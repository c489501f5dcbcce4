import { workflowTasksFromEnv } from "./core/workflow/workflow-env.ts";
import type { PlanReplayEvent } from "./core/workflow/workflow-tasks.ts";

// Parsed at cold start: a configuration mistake fails the first invocation, naming the variable.
const tasks = workflowTasksFromEnv(process.env);

/** Plans a replay: checks Loki is ready and takes the drain lock for spill/, lists the log groups to replay. */
export async function handler(event: PlanReplayEvent) {
  return tasks.planReplay(event);
}
