import { workflowTasksFromEnv } from "./core/workflow/workflow-env.ts";
import type { PlanBackfillEvent } from "./core/workflow/workflow-tasks.ts";

// Parsed at cold start: a configuration mistake fails the first invocation, naming the variable.
const tasks = workflowTasksFromEnv(process.env);

/** Plans a backfill (resolves the log groups, splits the range into hour-aligned slices, writes the plan to S3) or loads one part of a plan for a child execution. */
export async function handler(event: PlanBackfillEvent) {
  return tasks.planBackfill(event);
}
