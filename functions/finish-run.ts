import { workflowTasksFromEnv } from "./core/workflow/workflow-env.ts";
import type { FinishRunEvent } from "./core/workflow/workflow-tasks.ts";

// Parsed at cold start: a configuration mistake fails the first invocation, naming the variable.
const tasks = workflowTasksFromEnv(process.env);

/** Ends a backfill or replay: releases the drain lock and writes the run report (runs/<runId>/report.json). */
export async function handler(event: FinishRunEvent) {
  return tasks.finishRun(event);
}
