import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { loadConfig } from "./config.ts";
import { DemoStack } from "./stacks/demo-stack.ts";
import { PipelineStack } from "./stacks/pipeline-stack.ts";

/** Builds the project's app: the pipeline and, unless turned off, the demo. Exported for the tests. */
export function buildApp(app: App, env: Record<string, string | undefined> = process.env) {
  const config = loadConfig((key) => app.node.tryGetContext(key), env);
  const stackEnv = { region: config.region, ...(config.account ? { account: config.account } : {}) };
  const pipeline = new PipelineStack(app, `${config.stackPrefix}-Pipeline`, {
    env: stackEnv,
    config,
    description: "loki-shipper: ships CloudWatch Logs to Grafana Loki, with backfill and replay",
  });
  const demo = config.deployDemo
    ? new DemoStack(app, `${config.stackPrefix}-Demo`, {
        env: stackEnv,
        owner: config.demoOwner,
        systemUnderTest: config.demoSystemUnderTest,
        // With the account-level policy every group is subscribed already; a filter more would ship twice.
        ...(config.accountSubscriptionPolicy
          ? {}
          : { registration: { serviceToken: pipeline.shipper.registration.serviceToken } }),
        description: "loki-shipper demo: two sample functions that log every minute",
      })
    : undefined;
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { config, pipeline, demo };
}

if (import.meta.main) {
  const app = new App();
  buildApp(app);
  app.synth();
}
