import { ArnFormat, Duration, type RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { type Alarm, type IAlarmAction, Metric } from "aws-cdk-lib/aws-cloudwatch";
import { Rule, RuleTargetInput, Schedule } from "aws-cdk-lib/aws-events";
import { SfnStateMachine } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { SqsDestination } from "aws-cdk-lib/aws-lambda-destinations";
import { CfnAccountPolicy, type RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { IParameter } from "aws-cdk-lib/aws-ssm";
import { Construct } from "constructs";
import { DIMENSION, METRICS_NAMESPACE, SERVICE, SHIPPER_METRIC } from "../../functions/core/metric-names.ts";
import { thresholdAlarm } from "./alarms.ts";
import { functionLabelsOn, grantFunctionLabelLookups } from "./function-label-access.ts";
import { handlerCode } from "./lambda-handlers.ts";
import { LogGroupRegistration, type LogGroupSelectionProps } from "./log-group-registration.ts";
import { acknowledgeWildcardResources } from "./nag.ts";
import { NodeFunction } from "./node-function.ts";
import { ShipperBucket } from "./shipper-bucket.ts";
import { Workflows } from "./workflows.ts";

/** Which log group tags become Loki labels (the shipper's `LABEL_*` settings). */
export interface LabelOptionsProps {
  /**
   * Glob patterns (`*` only) on tag keys that may become labels.
   * @default ["*"]
   */
  readonly tagAllow?: string[];
  /**
   * Glob patterns on tag keys that never become labels; wins over tagAllow.
   * @default ["aws:*"]
   */
  readonly tagDeny?: string[];
  /**
   * Only tags whose key starts with this prefix are considered; the prefix is removed from the label name.
   * @default - every tag is considered
   */
  readonly tagPrefix?: string;
  /**
   * Add the log group name as a label.
   * @default true
   */
  readonly logGroupLabel?: boolean;
  /**
   * Add the AWS account id as a label.
   * @default true
   */
  readonly accountLabel?: boolean;
  /**
   * Add the AWS region as a label.
   * @default true
   */
  readonly regionLabel?: boolean;
  /**
   * Add the log stream name as a label (one stream per Lambda instance: high cardinality).
   * @default false
   */
  readonly logStreamLabel?: boolean;
  /**
   * Send the log stream name and Lambda request id as structured metadata.
   * @default true
   */
  readonly structuredMetadata?: boolean;
  /**
   * Labels added to every stream.
   * @default - none
   */
  readonly staticLabels?: Record<string, string>;
  /**
   * Most label names a stream may carry (Loki's max_label_names_per_series).
   * @default 15
   */
  readonly maxLabelNames?: number;
  /**
   * Labels from the Lambda function behind a log group (`/aws/lambda/<name>`, or the custom group
   * its `LoggingConfig.LogGroup` names): its tags and its runtime's family (`runtime="python"`).
   * Grants `lambda:GetFunction` and `lambda:ListFunctions` (and, for the backfill plan,
   * `tag:GetResources`) only when on.
   * @default true
   */
  readonly functionLabels?: boolean;
  /**
   * A tag key (e.g. `loki_tenant`) on the log group or, with function labels on, its Lambda function
   * (the group's tag wins) that chooses the Loki tenant (`X-Scope-OrgID`) of the group's events,
   * among `allowedTenants` only; it never becomes a label. A group without it goes to `tenant`.
   * Needs no further permission: the functions read these tags for the labels already.
   * @default - off: every event goes to `tenant`
   */
  readonly tenantTag?: string;
}

/**
 * One drop or mask rule (the functions' `LOG_RULES` setting, a JSON list of these). Patterns are
 * RE2 regular expressions (https://github.com/google/re2/wiki/Syntax), matched in linear time.
 */
export type LogRuleProps =
  | {
      readonly action: "drop";
      /** A line that matches is not shipped, and not kept in S3. */
      readonly pattern: string;
      /** Only for log groups whose name matches. @default - every log group */
      readonly logGroups?: string;
    }
  | {
      readonly action: "mask";
      /** A built-in pattern, or "all" of them. */
      readonly builtin: "email" | "ipv4" | "ipv6" | "bearer" | "jwt" | "aws_access_key" | "all";
      /** @default - every log group */
      readonly logGroups?: string;
    }
  | {
      readonly action: "mask";
      readonly pattern: string;
      /** `$1` refers to the pattern's first group. @default "<redacted>" */
      readonly replacement?: string;
      /** @default - every log group */
      readonly logGroups?: string;
    };

export interface LokiShipperProps {
  /** Base URL of Loki, e.g. https://logs-prod-012.grafana.net (the push path is added). */
  readonly lokiUrl: string;
  /**
   * Loki tenant, sent as X-Scope-OrgID.
   * @default - no tenant header (single-tenant Loki)
   */
  readonly tenant?: string;
  /**
   * The tenants a log group's `labels.tenantTag` may choose: exact names and RE2 patterns written
   * `/.../` (matching the whole name). A group naming another tenant has its events kept in
   * `rejected/` with the reason, never sent to another tenant. Required with `labels.tenantTag`.
   * @default - none: only `tenant` is used
   */
  readonly allowedTenants?: string[];
  /**
   * Secrets Manager secret with the Loki credentials (never logged).
   * @default - no authentication
   */
  readonly credentialsSecret?: ISecret;
  /**
   * SSM Parameter Store SecureString with the Loki credentials, instead of a secret.
   * @default - no parameter
   */
  readonly credentialsParameter?: IParameter;
  /**
   * User name for basic auth when the secret holds only the password (e.g. a Grafana Cloud instance id).
   * @default - taken from the secret ({"username","password"} JSON or "user:password")
   */
  readonly username?: string;
  /**
   * How the credentials are sent.
   * @default "basic" with credentials (secret or parameter), "none" without
   */
  readonly authType?: "none" | "basic" | "bearer";
  /**
   * Push body format.
   * @default "protobuf"
   */
  readonly pushFormat?: "protobuf" | "json";
  /**
   * Which tags become labels.
   * @default - the shipper's defaults (every tag except aws:*, plus log group, account and region)
   */
  readonly labels?: LabelOptionsProps;
  /**
   * Drop and mask rules, in order, applied by the live shipper and the backfill before anything is
   * pushed or kept in S3. Every rule is checked when a function starts; a bad one fails it with a
   * line naming the rule.
   * @default - none: every line is shipped as it is
   */
  readonly rules?: LogRuleProps[];
  /**
   * Log groups to subscribe at deploy time, and later when created or tagged (see subscribeNewLogGroups).
   * @default - none
   */
  readonly subscriptions?: LogGroupSelectionProps[];
  /**
   * Subscribe matching log groups created or tagged after deployment (EventBridge rule on
   * CloudTrail events; needs a trail that records management events).
   * @default true
   */
  readonly subscribeNewLogGroups?: boolean;
  /**
   * Subscribe every log group of the account and region, present and future, with one account-level
   * subscription filter policy instead of per-group filters (see infra/README.md for the trade-offs).
   * The pipeline's own log groups are excluded from it. Cannot be combined with `subscriptions`.
   * @default false
   */
  readonly accountSubscriptionPolicy?: boolean;
  /**
   * Name of the subscription filter put on linked log groups.
   * @default "loki-shipper"
   */
  readonly subscriptionFilterName?: string;
  /**
   * Reserved concurrency of the shipper, to protect Loki (and the account's pool).
   * @default - unreserved
   */
  readonly shipperReservedConcurrency?: number;
  /**
   * Memory of the shipper Lambda in MB.
   * @default 512
   */
  readonly shipperMemorySize?: number;
  /**
   * Timeout of the shipper Lambda; the shipper spills what it could not push before it.
   * @default Duration.minutes(2)
   */
  readonly shipperTimeout?: Duration;
  /**
   * How often the spill is drained into Loki by the replay state machine; undefined turns it off.
   * @default Duration.minutes(5)
   */
  readonly spillDrainInterval?: Duration | null;
  /**
   * Actions for the alarms (e.g. an SNS topic action).
   * @default - alarms without actions
   */
  readonly alarmActions?: IAlarmAction[];
  /**
   * KMS key of the bucket.
   * @default - S3-managed encryption
   */
  readonly encryptionKey?: IKey;
  /**
   * Bucket for the S3 server access logs of the pipeline bucket.
   * @default - none
   */
  readonly serverAccessLogsBucket?: IBucket;
  /**
   * Removal policy of the bucket, which holds undelivered events.
   * @default RemovalPolicy.RETAIN
   */
  readonly bucketRemovalPolicy?: RemovalPolicy;
  /**
   * Retention of the pipeline's own log groups.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Prefix of the state machine names.
   * @default - the stack name
   */
  readonly namePrefix?: string;
  /**
   * Further environment variables of the functions that push to Loki, e.g.
   * LOKI_REJECT_OLD_SAMPLES_MAX_AGE or LOKI_MAX_LINE_SIZE when Loki's limits differ from the defaults.
   * @default - none
   */
  readonly additionalEnvironment?: Record<string, string>;
}

/** Namespace and names of the shipper's own metrics, from functions/core/metric-names.ts (kept for the package's users). */
export const SHIPPER_METRICS = {
  namespace: METRICS_NAMESPACE,
  serviceName: SERVICE.shipper,
  spilled: SHIPPER_METRIC.eventsSpilled,
  refused: SHIPPER_METRIC.eventsRefused,
} as const;

/**
 * The whole pipeline in one construct, to drop into any CDK app: the live shipper Lambda (with a
 * dead-letter queue so no invocation is lost), the encrypted bucket, the backfill and replay state
 * machines, automatic subscription of log groups, a scheduled drain of the spill and alarms.
 */
export class LokiShipper extends Construct {
  readonly bucket: ShipperBucket;
  readonly shipper: NodeFunction;
  readonly deadLetterQueue: Queue;
  readonly workflows: Workflows;
  readonly registration: LogGroupRegistration;
  readonly alarms: Alarm[] = [];
  readonly drainRule?: Rule;
  readonly accountPolicy?: CfnAccountPolicy;

  constructor(scope: Construct, id: string, props: LokiShipperProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.bucket = new ShipperBucket(this, "Storage", {
      encryptionKey: props.encryptionKey,
      serverAccessLogsBucket: props.serverAccessLogsBucket,
      removalPolicy: props.bucketRemovalPolicy,
    });
    const bucket = this.bucket.bucket;

    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter destination of the shipper and the registration rule.",
    });

    const environment = lokiEnvironment(props, bucket.bucketName);
    this.shipper = new NodeFunction(this, "Shipper", {
      ...handlerCode("shipper"),
      description: "Ships CloudWatch Logs subscription batches to Loki",
      memorySize: props.shipperMemorySize ?? 512,
      timeout: props.shipperTimeout ?? Duration.minutes(2),
      reservedConcurrentExecutions: props.shipperReservedConcurrency,
      environment: { ...environment, POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE },
      serviceName: SERVICE.shipper,
      logRetention: props.logRetention,
      // CloudWatch Logs invokes asynchronously: after Lambda's retries the batch goes to the queue.
      onFailure: new SqsDestination(this.deadLetterQueue),
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
    });
    const shipper = this.shipper.function;
    const anyLogGroup = stack.formatArn({
      service: "logs",
      resource: "log-group",
      resourceName: "*",
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    shipper.addPermission("CloudWatchLogsInvoke", {
      principal: new ServicePrincipal("logs.amazonaws.com"),
      sourceAccount: stack.account,
      sourceArn: anyLogGroup,
    });
    const undeliveredObjects = ["spill/*", "rejected/*", "malformed/*"].map((prefix) =>
      bucket.arnForObjects(prefix),
    );
    shipper.addToRolePolicy(
      new PolicyStatement({
        sid: "KeepUndelivered",
        actions: ["s3:PutObject"],
        resources: undeliveredObjects,
      }),
    );
    shipper.addToRolePolicy(
      new PolicyStatement({
        sid: "ReadLogGroupTags",
        actions: ["logs:ListTagsForResource"],
        resources: [anyLogGroup],
      }),
    );
    if (functionLabelsOn(environment)) grantFunctionLabelLookups(shipper, this.shipper, { bulk: false });
    props.credentialsSecret?.grantRead(shipper);
    props.credentialsParameter?.grantRead(shipper);
    bucket.encryptionKey?.grantEncrypt(shipper);
    acknowledgeWildcardResources(
      this.shipper,
      undeliveredObjects,
      "The shipper writes new objects (keys chosen at run time) under spill/, rejected/ and malformed/ only.",
    );
    acknowledgeWildcardResources(
      this.shipper,
      [anyLogGroup],
      "The shipper reads the tags of whichever log groups are subscribed to it; they are linked at run time.",
    );

    this.workflows = new Workflows(this, "Workflows", {
      bucket,
      lokiEnvironment: environment,
      credentialsSecret: props.credentialsSecret,
      credentialsParameter: props.credentialsParameter,
      namePrefix: props.namePrefix,
      logRetention: props.logRetention,
    });

    this.registration = new LogGroupRegistration(this, "Registration", {
      shipper,
      selections: props.subscriptions,
      subscribeNewLogGroups: props.subscribeNewLogGroups,
      filterName: props.subscriptionFilterName,
      deadLetterQueue: this.deadLetterQueue,
      logRetention: props.logRetention,
      excludedLogGroups: [
        this.shipper.logGroupName,
        ...[
          this.workflows.planBackfill,
          this.workflows.exportSlice,
          this.workflows.planReplay,
          this.workflows.replayChunks,
          this.workflows.finishRun,
        ].map((fn) => fn.logGroupName),
      ],
    });

    if (props.accountSubscriptionPolicy) {
      if ((props.subscriptions ?? []).length > 0) {
        throw new Error(
          "LokiShipper: accountSubscriptionPolicy already covers every log group; remove subscriptions (they would deliver events twice)",
        );
      }
      this.accountPolicy = this.subscribeAccount(stack);
    }

    const drainInterval =
      props.spillDrainInterval === undefined ? Duration.minutes(5) : props.spillDrainInterval;
    if (drainInterval) {
      this.drainRule = new Rule(this, "DrainSpill", {
        description: "Replays the spill (events Loki did not take) into Loki",
        schedule: Schedule.rate(drainInterval),
        targets: [
          new SfnStateMachine(this.workflows.replay, {
            input: RuleTargetInput.fromObject({ source: "spill" }),
            deadLetterQueue: this.deadLetterQueue,
            retryAttempts: 4,
          }),
        ],
      });
    }

    this.addAlarms(props.alarmActions ?? []);
  }

  /** Every log group of the pipeline itself: never subscribed, or the shipper would ship its own logs. */
  get ownLogGroupNames(): string[] {
    return [
      this.shipper,
      this.registration.registrar,
      this.workflows.planBackfill,
      this.workflows.exportSlice,
      this.workflows.planReplay,
      this.workflows.replayChunks,
      this.workflows.finishRun,
    ].map((fn) => fn.logGroupName);
  }

  private subscribeAccount(stack: Stack): CfnAccountPolicy {
    // Only `LogGroupName NOT IN [...]` is supported for this policy type; it is what prevents the loop.
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/Subscriptions-recursion-prevention.html
    return new CfnAccountPolicy(this, "AccountSubscription", {
      policyName: `${stack.stackName}-loki-shipper`,
      policyType: "SUBSCRIPTION_FILTER_POLICY",
      scope: "ALL",
      policyDocument: stack.toJsonString({
        DestinationArn: this.shipper.function.functionArn,
        FilterPattern: "",
      }),
      selectionCriteria: `LogGroupName NOT IN ${stack.toJsonString([
        ...this.ownLogGroupNames,
        this.registration.providerLogGroup.logGroupName,
      ])}`,
    });
  }

  private addAlarms(actions: IAlarmAction[]): void {
    const shipperMetric = (metricName: string) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { [DIMENSION.service]: SERVICE.shipper },
        statistic: "Sum",
        period: Duration.minutes(5),
      });
    const alarmOn = (id: string, description: string, metric: Metric) => {
      this.alarms.push(thresholdAlarm(this, id, { description, metric, threshold: 1, actions }));
    };
    alarmOn(
      "SpilledAlarm",
      "The shipper spilled events to S3 (Loki unreachable or throttling); the scheduled replay drains them.",
      shipperMetric(SHIPPER_METRIC.eventsSpilled),
    );
    alarmOn(
      "RefusedAlarm",
      "Loki refused events (too old, too new, line too long); they are kept under rejected/ with the reason.",
      shipperMetric(SHIPPER_METRIC.eventsRefused),
    );
    alarmOn(
      "DeadLetterAlarm",
      "Invocations failed after their retries and wait in the dead-letter queue: redrive them.",
      this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: "Max",
      }),
    );
    alarmOn(
      "ShipperErrorsAlarm",
      "The shipper Lambda failed invocations.",
      this.shipper.function.metricErrors(),
    );
  }
}

/** Environment of every function that pushes to Loki (parsed by loki-target.ts, labels.ts and rules.ts). */
function lokiEnvironment(props: LokiShipperProps, bucketName: string): Record<string, string> {
  const labels = props.labels ?? {};
  if (props.credentialsSecret && props.credentialsParameter) {
    throw new Error("LokiShipper: give credentialsSecret or credentialsParameter, not both");
  }
  const hasCredentials = props.credentialsSecret !== undefined || props.credentialsParameter !== undefined;
  const authType = props.authType ?? (hasCredentials ? "basic" : "none");
  if (authType !== "none" && !hasCredentials) {
    throw new Error(
      `LokiShipper: authType "${authType}" needs credentialsSecret or credentialsParameter. Received: neither`,
    );
  }
  if (labels.tenantTag && !props.allowedTenants?.length) {
    throw new Error(
      `LokiShipper: labels.tenantTag "${labels.tenantTag}" lets whoever may tag a log group or function choose its Loki tenant, so it needs allowedTenants, the tenants they may choose. Received: none`,
    );
  }
  const environment: Record<string, string | undefined> = {
    BUCKET_NAME: bucketName,
    LOKI_URL: props.lokiUrl,
    LOKI_TENANT: props.tenant,
    LOKI_TENANTS_ALLOWED: props.allowedTenants?.join(","),
    LOKI_AUTH: authType,
    LOKI_SECRET_ARN: props.credentialsSecret?.secretArn,
    LOKI_SECRET_PARAMETER: props.credentialsParameter?.parameterName,
    LOKI_USERNAME: props.username,
    LOKI_PUSH_FORMAT: props.pushFormat ?? "protobuf",
    LABEL_TAG_ALLOW: labels.tagAllow?.join(","),
    LABEL_TAG_DENY: labels.tagDeny?.join(","),
    LABEL_TAG_PREFIX: labels.tagPrefix,
    LABEL_LOG_GROUP: booleanText(labels.logGroupLabel),
    LABEL_ACCOUNT: booleanText(labels.accountLabel),
    LABEL_REGION: booleanText(labels.regionLabel),
    LABEL_LOG_STREAM: booleanText(labels.logStreamLabel),
    LABEL_STRUCTURED_METADATA: booleanText(labels.structuredMetadata),
    LABEL_STATIC: labels.staticLabels
      ? Object.entries(labels.staticLabels)
          .map(([name, value]) => `${name}=${value}`)
          .join(",")
      : undefined,
    LABEL_LAMBDA_FUNCTION: booleanText(labels.functionLabels),
    LABEL_TENANT_TAG: labels.tenantTag,
    LABEL_MAX_COUNT: labels.maxLabelNames === undefined ? undefined : String(labels.maxLabelNames),
    LOG_RULES: props.rules && props.rules.length > 0 ? JSON.stringify(props.rules) : undefined,
    ...props.additionalEnvironment,
  };
  return Object.fromEntries(
    Object.entries(environment).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function booleanText(value: boolean | undefined): string | undefined {
  return value === undefined ? undefined : String(value);
}
