import type { Context } from "aws-lambda";
import { workflowTasksFromEnv } from "./core/workflow/workflow-env.ts";
import type { ExportSliceEvent } from "./core/workflow/workflow-tasks.ts";

// Parsed at cold start: a configuration mistake fails the first invocation, naming the variable.
const tasks = workflowTasksFromEnv(process.env);

/** Exports one slice from FilterLogEvents into S3 chunks, a bounded number of pages per invocation; returns continue until the slice is done. */
export async function handler(event: ExportSliceEvent, context?: Pick<Context, "getRemainingTimeInMillis">) {
  return tasks.exportSlice(event, context?.getRemainingTimeInMillis());
}
