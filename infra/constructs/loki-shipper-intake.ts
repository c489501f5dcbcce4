import { Arn, Aws, CfnOutput, Duration, Stack, Token, Validations } from "aws-cdk-lib";
import type { Alarm, IAlarmAction } from "aws-cdk-lib/aws-cloudwatch";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Stream, StreamEncryption, StreamMode } from "aws-cdk-lib/aws-kinesis";
import { Key } from "aws-cdk-lib/aws-kms";
import {
  type DlqDestinationConfig,
  type IEventSourceDlq,
  type IEventSourceMapping,
  type IFunction,
  StartingPosition,
} from "aws-cdk-lib/aws-lambda";
import { KinesisEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { thresholdAlarm } from "./alarms.ts";
import {
  DEFAULT_DESTINATION_NAME,
  DEFAULT_READER_ROLE_NAME,
  type LogSenders,
  type LogSendersProps,
  parseLogSenders,
} from "./log-senders.ts";
import type { LokiShipper } from "./loki-shipper.ts";
import { LokiShipperDestinationStack } from "./loki-shipper-destination.ts";
import { acknowledgeWildcardResources } from "./nag.ts";
import type { NodeFunction } from "./node-function.ts";

export interface LokiShipperIntakeProps {
  /** The pipeline whose shipper reads the stream and whose functions read the source accounts. */
  readonly pipeline: LokiShipper;
  /** The accounts, or the organization, that send their logs. */
  readonly senders: LogSendersProps;
  /**
   * The regions whose log groups send: one `LokiShipperDestinationStack` each (a log group can only
   * subscribe to a destination of its own region), next to this stack in the same app.
   */
  readonly regions: string[];
  /**
   * Name of the destination in every region.
   * @default "loki-shipper"
   */
  readonly destinationName?: string;
  /**
   * Name of the reader role in every source account, which the shipper and the backfill assume to
   * read tags, functions and (for a backfill) events there; `false` reads no source account (events
   * ship with the labels known without it).
   * @default "loki-shipper-reader"
   */
  readonly readerRoleName?: string | false;
  /**
   * Batches read from each shard at once. Records of one log stream keep their order (same
   * partition key), so more only adds concurrency.
   * @default 2
   */
  readonly parallelizationFactor?: number;
  /**
   * Retries of a batch the shipper failed (it fails only when it could not even keep the events
   * in S3) before the batch goes to the bucket under `aws/lambda/`.
   * @default 10
   */
  readonly retryAttempts?: number;
  /**
   * Age after which a batch still failing goes to the bucket; below the stream's 24 h retention,
   * so that no record expires in the stream first.
   * @default Duration.hours(12)
   */
  readonly maxRecordAge?: Duration;
  /**
   * Actions of the intake's alarms (records falling behind, failed batches not kept).
   * @default - alarms without actions
   */
  readonly alarmActions?: IAlarmAction[];
}

/**
 * Live shipping from many accounts: an on-demand, KMS-encrypted Kinesis stream read by the
 * pipeline's shipper, the role CloudWatch Logs assumes to write into it, one destination stack per
 * source region, and access for the shipper and backfill to the reader role of each source account.
 * A Lambda function cannot be a cross-account destination; a stream can.
 */
export class LokiShipperIntake extends Construct {
  readonly stream: Stream;
  readonly streamKey: Key;
  /** Assumed by CloudWatch Logs to put the subscribed events into the stream. */
  readonly writerRole: Role;
  readonly destinationStacks: LokiShipperDestinationStack[];
  /** Roles the source accounts' reader role must trust (`LokiShipperSource` `readerRole`). */
  readonly readerTrustedRoles: Role[];
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: LokiShipperIntakeProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const senders = parseLogSenders("LokiShipperIntake", props.senders);
    checkRegions(stack, props.regions);

    this.streamKey = new Key(this, "StreamKey", {
      description: "Encrypts the loki-shipper intake stream",
      enableKeyRotation: true,
    });
    this.stream = new Stream(this, "Stream", {
      streamName: `${stack.stackName}-intake`,
      streamMode: StreamMode.ON_DEMAND,
      encryption: StreamEncryption.KMS,
      encryptionKey: this.streamKey,
    });
    Validations.of(this.stream).acknowledge({
      id: "AwsSolutions-KDS3",
      reason:
        "A customer-managed key instead of aws/kinesis: its use is granted explicitly, encrypt to CloudWatch Logs' writer role and decrypt to the shipper only.",
    });
    this.writerRole = this.createWriterRole(senders);
    this.readShipperFromStream(props);
    this.destinationStacks = props.regions.map(
      (region) =>
        new LokiShipperDestinationStack(
          stack.node.scope as Construct,
          `${stack.stackName}-Destination-${region}`,
          {
            env: { region, ...(Token.isUnresolved(stack.account) ? {} : { account: stack.account }) },
            description: `loki-shipper: the CloudWatch Logs destination of ${region}, into the intake stream in ${stack.region}`,
            streamArn: this.literalArn("kinesis", stack.region, `stream/${this.stream.streamName}`),
            roleArn: this.literalArn("iam", "", `role/${this.writerRole.roleName}`),
            senders: props.senders,
            destinationName: props.destinationName ?? DEFAULT_DESTINATION_NAME,
          },
        ),
    );
    for (const destinationStack of this.destinationStacks) destinationStack.addStackDependency(stack);
    const readers = readerFunctions(props.pipeline);
    this.readerTrustedRoles = readers.map((fn) => fn.function.role as Role);
    if (props.readerRoleName !== false)
      grantSourceReading(readers, props.readerRoleName ?? DEFAULT_READER_ROLE_NAME, senders);
    new CfnOutput(this, "ReaderTrustedRoleArns", {
      description:
        "The roles the source accounts' reader role trusts (LokiShipperSource readerRole.trustedRoleArns)",
      value: this.readerTrustedRoles.map((role) => role.roleArn).join(","),
    });
  }

  /** An ARN in this account with no reference to this stack, so that stacks in other regions can hold it. */
  private literalArn(service: string, region: string, resource: string): string {
    const stack = Stack.of(this);
    return Arn.format({ partition: Aws.PARTITION, service, region, account: stack.account, resource }, stack);
  }

  private createWriterRole(senders: LogSenders): Role {
    const stack = Stack.of(this);
    // The senders' log ARNs (and ours, for the test message sent when a destination is created),
    // as AWS documents for this role: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CreateDestination.html
    const sourceArns =
      senders.kind === "accounts"
        ? [...senders.accountIds, stack.account].map((account) => `arn:${Aws.PARTITION}:logs:*:${account}:*`)
        : [`arn:${Aws.PARTITION}:logs:*:*:*`];
    const role = new Role(this, "WriterRole", {
      roleName: `${stack.stackName}-intake-writer`,
      description:
        "Assumed by CloudWatch Logs to put subscribed log events into the loki-shipper intake stream",
      assumedBy: new ServicePrincipal("logs.amazonaws.com").withConditions({
        StringLike: { "aws:SourceArn": sourceArns },
      }),
    });
    role.addToPolicy(
      new PolicyStatement({
        sid: "PutIntakeRecords",
        actions: ["kinesis:PutRecord"],
        resources: [this.stream.streamArn],
      }),
    );
    this.streamKey.grant(role, "kms:GenerateDataKey");
    return role;
  }

  private readShipperFromStream(props: LokiShipperIntakeProps): void {
    const shipper = props.pipeline.shipper.function;
    shipper.addEventSource(
      new KinesisEventSource(this.stream, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(1),
        parallelizationFactor: props.parallelizationFactor ?? 2,
        reportBatchItemFailures: true,
        // A failing batch is a failing S3 or Loki, not a poison record (malformed records are kept
        // under malformed/), so splitting it only re-sends what was already shipped.
        bisectBatchOnError: false,
        retryAttempts: props.retryAttempts ?? 10,
        maxRecordAge: props.maxRecordAge ?? Duration.hours(12),
        onFailure: new KeepInBucket(props.pipeline.bucket.bucket, props.pipeline.shipper),
      }),
    );
    this.addAlarms(shipper, props.alarmActions ?? []);
  }

  private addAlarms(shipper: IFunction, actions: IAlarmAction[]): void {
    const alarmOn = (
      alarmId: string,
      description: string,
      metricName: string,
      statistic: string,
      threshold: number,
    ) => {
      const metric = shipper.metric(metricName, { statistic, period: Duration.minutes(5) });
      this.alarms.push(thresholdAlarm(this, alarmId, { description, metric, threshold, actions }));
    };
    alarmOn(
      "IteratorAgeAlarm",
      "The shipper is more than an hour behind the intake stream; records expire from it after 24 h.",
      "IteratorAge",
      "Maximum",
      Duration.hours(1).toMilliseconds(),
    );
    alarmOn(
      "FailedBatchNotKeptAlarm",
      "A batch the shipper gave up on could not be written to the bucket (aws/lambda/): it is lost. Check the shipper role and the bucket.",
      "DestinationDeliveryFailures",
      "Sum",
      1,
    );
  }
}

/**
 * The on-failure destination of the stream: the pipeline bucket, which keeps the whole failed
 * batch (an SQS destination would keep only its shard and sequence numbers). CDK's own
 * S3OnFailureDestination grants read and write on the whole bucket; this grants what Lambda needs,
 * s3:PutObject and s3:ListBucket, and only under the prefix Lambda writes to.
 * https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
 */
class KeepInBucket implements IEventSourceDlq {
  readonly #bucket: IBucket;
  readonly #nagScope: NodeFunction;

  constructor(bucket: IBucket, nagScope: NodeFunction) {
    this.#bucket = bucket;
    this.#nagScope = nagScope;
  }

  bind(_target: IEventSourceMapping, targetHandler: IFunction): DlqDestinationConfig {
    const failedBatches = this.#bucket.arnForObjects("aws/lambda/*");
    targetHandler.addToRolePolicy(
      new PolicyStatement({
        sid: "KeepFailedBatches",
        actions: ["s3:PutObject"],
        resources: [failedBatches],
      }),
    );
    targetHandler.addToRolePolicy(
      new PolicyStatement({
        sid: "ListFailedBatches",
        actions: ["s3:ListBucket"],
        resources: [this.#bucket.bucketArn],
      }),
    );
    this.#bucket.encryptionKey?.grantEncrypt(targetHandler);
    acknowledgeWildcardResources(
      this.#nagScope,
      [failedBatches],
      "Lambda writes the batches the shipper gave up on under aws/lambda/<mapping id>/<shard>/<date>/..., keys it chooses.",
    );
    return { destination: this.#bucket.bucketArn };
  }
}

/** The pipeline functions that read a source account: tags and functions for labels, events for a backfill. */
function readerFunctions(pipeline: LokiShipper): NodeFunction[] {
  const { workflows } = pipeline;
  return [pipeline.shipper, workflows.planBackfill, workflows.exportSlice, workflows.replayChunks];
}

function grantSourceReading(readers: NodeFunction[], roleName: string, senders: LogSenders): void {
  const accounts = senders.kind === "accounts" ? senders.accountIds : ["*"];
  const readerRoles = accounts.map((account) => `arn:${Aws.PARTITION}:iam::${account}:role/${roleName}`);
  for (const reader of readers) {
    reader.function.addEnvironment("SOURCE_READER_ROLE_NAME", roleName);
    reader.function.addToRolePolicy(
      new PolicyStatement({ sid: "AssumeSourceReader", actions: ["sts:AssumeRole"], resources: readerRoles }),
    );
    acknowledgeWildcardResources(
      reader,
      readerRoles,
      "The organization's accounts are not known at deploy time; only the reader role of that name, in any of them.",
    );
  }
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;

function checkRegions(stack: Stack, regions: string[]): void {
  if (Token.isUnresolved(stack.region)) {
    throw new Error(
      "LokiShipperIntake: its stack needs an explicit env.region, since the destinations of other regions point at the stream there. Received: an environment-agnostic stack",
    );
  }
  const invalid = regions.filter((region) => !REGION.test(region));
  if (regions.length === 0 || invalid.length > 0) {
    throw new Error(
      `LokiShipperIntake: regions must list AWS regions such as eu-central-1. Received: ${JSON.stringify(regions.length === 0 ? regions : invalid)}`,
    );
  }
}
