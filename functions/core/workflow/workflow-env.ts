import { Logger } from "@aws-lambda-powertools/logger";
import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { S3Client } from "@aws-sdk/client-s3";
import * as z from "zod/mini";
import { parseEverySection } from "../config-sections.ts";
import { GroupMetrics } from "../delivery/delivery-metrics.ts";
import { parseStreamBudgetSettings } from "../delivery/stream-budget.ts";
import { lambdaClientOnFirstUse, taggingClientOnFirstUse } from "../labels/function-lookup.ts";
import { configErrorFrom, emptyToUndefined, parseLabelOptions } from "../labels/labels.ts";
import { parseLokiTarget } from "../loki/loki-target.ts";
import { SERVICE } from "../metric-names.ts";
import { createWorkflowTasks, type WorkflowTasks } from "./workflow-tasks.ts";

const envSchema = z.object({
  BUCKET_NAME: z
    .string({ message: "required: the bucket for chunks, spill/ and runs/" })
    .check(z.minLength(3)),
});

/**
 * The workflow tasks of a Lambda function, from its environment (BUCKET_NAME, LOKI_*, LABEL_*),
 * parsed once at cold start: every configuration mistake of every section fails the first
 * invocation in one ConfigError, one line each, and the invocations reuse the typed result.
 */
export function workflowTasksFromEnv(env: Record<string, string | undefined>): WorkflowTasks {
  const config = parseEverySection({
    bucket: () => {
      const parsed = envSchema.safeParse(emptyToUndefined(env, Object.keys(envSchema.shape)));
      if (!parsed.success) throw configErrorFrom(parsed.error, env);
      return parsed.data.BUCKET_NAME;
    },
    loki: () => parseLokiTarget(env),
    streamBudget: () => parseStreamBudgetSettings(env),
    labels: () => parseLabelOptions(env),
  });
  const serviceName = env.POWERTOOLS_SERVICE_NAME ?? SERVICE.workflow;
  // Lambda and tagging serve only the labels of functions' log groups: loaded on first use, from
  // the SDK the Lambda runtime provides.
  return createWorkflowTasks({
    logs: new CloudWatchLogsClient({}),
    functions: { lambda: lambdaClientOnFirstUse(), tagging: taggingClientOnFirstUse() },
    s3: new S3Client({}),
    bucket: config.bucket,
    env,
    parsedEnv: { loki: config.loki, labels: config.labels },
    logger: new Logger({ serviceName }),
    groupMetrics: (logGroup, path) => new GroupMetrics(logGroup, path, serviceName),
  });
}
