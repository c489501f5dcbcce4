import { CfnOutput, Duration, Fn, Stack, type StackProps } from "aws-cdk-lib";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import type { AppConfig } from "../config.ts";
import { LokiShipper } from "../constructs/loki-shipper.ts";

export interface PipelineStackProps extends StackProps {
  readonly config: AppConfig;
}

/** The project's own deployment of the pipeline, configured from context or environment. */
export class PipelineStack extends Stack {
  readonly shipper: LokiShipper;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { config } = props;
    const credentialsSecret = config.lokiSecretArn
      ? Secret.fromSecretCompleteArn(this, "LokiCredentials", config.lokiSecretArn)
      : undefined;
    const subscriptions = [
      ...config.subscribePrefixes.map((prefix) => ({ prefixes: [prefix] })),
      ...config.subscribeTagSelectors.map((tagSelector) => ({ tagSelector })),
    ];
    this.shipper = new LokiShipper(this, "LokiShipper", {
      lokiUrl: config.lokiUrl,
      tenant: config.lokiTenant,
      ...(config.allowedTenants ? { allowedTenants: config.allowedTenants } : {}),
      authType: config.lokiAuth,
      credentialsSecret,
      pushFormat: config.lokiPushFormat,
      subscriptions,
      subscribeNewLogGroups: config.subscribeNewLogGroups,
      accountSubscriptionPolicy: config.accountSubscriptionPolicy,
      shipperReservedConcurrency: config.shipperReservedConcurrency,
      labels: {
        functionLabels: config.functionLabels,
        ...(config.tenantTag ? { tenantTag: config.tenantTag } : {}),
      },
      spillDrainInterval: config.spillDrainMinutes === 0 ? null : Duration.minutes(config.spillDrainMinutes),
      logRetention: config.logRetentionDays as RetentionDays,
      namePrefix: id,
    });

    // What the CLI needs to find the pipeline.
    new CfnOutput(this, "BucketName", { value: this.shipper.bucket.bucket.bucketName });
    new CfnOutput(this, "ShipperFunctionArn", { value: this.shipper.shipper.function.functionArn });
    new CfnOutput(this, "BackfillStateMachineArn", {
      value: this.shipper.workflows.backfill.stateMachineArn,
    });
    new CfnOutput(this, "ReplayStateMachineArn", { value: this.shipper.workflows.replay.stateMachineArn });
    new CfnOutput(this, "DeadLetterQueueUrl", { value: this.shipper.deadLetterQueue.queueUrl });
    new CfnOutput(this, "OwnLogGroups", {
      description:
        "The pipeline's own log groups, never to be linked (they would loop): pass them to link as exclusions",
      value: Fn.join(",", this.shipper.ownLogGroupNames),
    });
  }
}
