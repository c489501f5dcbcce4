import { Logger } from "@aws-lambda-powertools/logger";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { ResourceGroupsTaggingAPIClient } from "@aws-sdk/client-resource-groups-tagging-api";
import { S3Client } from "@aws-sdk/client-s3";
import { z } from "zod";
import { GroupMetrics } from "../delivery/delivery-metrics.ts";
import { parseStreamBudgetSettings } from "../delivery/stream-budget.ts";
import { ConfigError } from "../errors.ts";
import { parseLabelOptions } from "../labels/labels.ts";
import { parseLokiTarget } from "../loki/loki-target.ts";
import { SERVICE } from "../metric-names.ts";
import { createWorkflowTasks, type WorkflowTasks } from "./workflow-tasks.ts";

const envSchema = z.object({
  BUCKET_NAME: z.string({ message: "BUCKET_NAME must name the bucket for chunks, spill/ and runs/" }).min(3),
});

/**
 * The workflow tasks of a Lambda function, from its environment (BUCKET_NAME, LOKI_*, LABEL_*),
 * built at cold start so that a configuration mistake fails the first invocation with one clear
 * message naming the variable.
 */
export function workflowTasksFromEnv(env: Record<string, string | undefined>): WorkflowTasks {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((issue) => issue.message).join("; "));
  parseLokiTarget(env);
  parseStreamBudgetSettings(env);
  parseLabelOptions(env);
  const serviceName = env.POWERTOOLS_SERVICE_NAME ?? SERVICE.workflow;
  return createWorkflowTasks({
    logs: new CloudWatchLogsClient({}),
    functions: { lambda: new LambdaClient({}), tagging: new ResourceGroupsTaggingAPIClient({}) },
    s3: new S3Client({}),
    bucket: parsed.data.BUCKET_NAME,
    env,
    logger: new Logger({ serviceName }),
    groupMetrics: (logGroup, path) => new GroupMetrics(logGroup, path, serviceName),
  });
}
