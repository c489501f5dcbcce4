import { fileURLToPath } from "node:url";
import { ArnFormat, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { IParameter } from "aws-cdk-lib/aws-ssm";
import { DefinitionBody, LogLevel, StateMachine } from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import { functionLabelsOn, grantFunctionLabelLookups } from "./function-label-access.ts";
import { handlerCode, type LambdaHandler } from "./lambda-handlers.ts";
import { acknowledgeServiceWildcard, acknowledgeWildcardResources } from "./nag.ts";
import { NodeFunction } from "./node-function.ts";

export interface WorkflowsProps {
  /** The pipeline's bucket (runs/, spill/, rejected/). */
  readonly bucket: IBucket;
  /** Environment shared by the functions that push to Loki: BUCKET_NAME, LOKI_*, LABEL_*. */
  readonly lokiEnvironment: Record<string, string>;
  /**
   * Secret with the Loki credentials, read by the functions that push.
   * @default - no credentials
   */
  readonly credentialsSecret?: ISecret;
  /**
   * SSM parameter with the Loki credentials, read by the functions that push.
   * @default - no parameter
   */
  readonly credentialsParameter?: IParameter;
  /**
   * Prefix of the state machine names: `<prefix>-backfill` and `<prefix>-replay`.
   * @default - the stack name
   */
  readonly namePrefix?: string;
  /**
   * Retention of the functions' and state machines' log groups.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Directory of the ASL files.
   * @default the project's statemachines/
   */
  readonly definitionsDirectory?: string;
}

const STATEMACHINES_DIR = fileURLToPath(new URL("../../statemachines/", import.meta.url));

/**
 * The backfill and replay state machines, loaded from their ASL files with a substitution for
 * every ARN, and the Lambda tasks they run. A file-based definition grants nothing by itself, so
 * every permission is written out here: invoke on the exact functions, and for the backfill's
 * child executions (`states:startExecution.sync`) start/describe/stop on itself plus the managed
 * EventBridge rule Step Functions uses to follow them.
 */
export class Workflows extends Construct {
  readonly planBackfill: NodeFunction;
  readonly exportSlice: NodeFunction;
  readonly planReplay: NodeFunction;
  readonly replayChunks: NodeFunction;
  readonly finishRun: NodeFunction;
  readonly backfill: StateMachine;
  readonly replay: StateMachine;
  readonly backfillStateMachineName: string;
  readonly replayStateMachineName: string;

  constructor(scope: Construct, id: string, props: WorkflowsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const environment = props.lokiEnvironment;
    const task = (taskId: string, handler: LambdaHandler, description: string, timeout: Duration) =>
      new NodeFunction(this, taskId, {
        ...handlerCode(handler),
        description,
        timeout,
        memorySize: 512,
        environment,
        logRetention,
        serviceName: `loki-shipper-${handler}`,
      });
    this.planBackfill = task("PlanBackfill", "backfill-plan", "Plans a backfill run", Duration.minutes(5));
    this.exportSlice = task(
      "ExportSlice",
      "backfill-export",
      "Exports one time slice of a log group from CloudWatch Logs to S3 chunks",
      Duration.minutes(15),
    );
    this.planReplay = task("PlanReplay", "replay-plan", "Plans a replay run", Duration.minutes(5));
    this.replayChunks = task(
      "ReplayChunks",
      "replay-chunks",
      "Replays S3 chunks into Loki in timestamp order",
      Duration.minutes(15),
    );
    this.finishRun = task("FinishRun", "finish-run", "Writes the report of a run", Duration.minutes(5));

    this.grantFunctionAccess(props, stack);

    const prefix = props.namePrefix ?? stack.stackName;
    this.backfillStateMachineName = `${prefix}-backfill`;
    this.replayStateMachineName = `${prefix}-replay`;
    const backfillArn = stack.formatArn({
      service: "states",
      resource: "stateMachine",
      resourceName: this.backfillStateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const backfillExecutions = stack.formatArn({
      service: "states",
      resource: "execution",
      resourceName: `${this.backfillStateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const definitions = props.definitionsDirectory ?? STATEMACHINES_DIR;

    const backfillRole = new Role(this, "BackfillRole", {
      assumedBy: new ServicePrincipal("states.amazonaws.com"),
      description: "Runs the Loki shipper backfill state machine",
    });
    backfillRole.addToPolicy(
      invokeStatement([this.planBackfill, this.exportSlice, this.replayChunks, this.finishRun]),
    );
    backfillRole.addToPolicy(
      new PolicyStatement({
        sid: "StartChildExecutions",
        actions: ["states:StartExecution"],
        resources: [backfillArn],
      }),
    );
    backfillRole.addToPolicy(
      new PolicyStatement({
        sid: "FollowChildExecutions",
        actions: ["states:DescribeExecution", "states:StopExecution"],
        resources: [backfillExecutions],
      }),
    );
    backfillRole.addToPolicy(
      new PolicyStatement({
        // https://docs.aws.amazon.com/step-functions/latest/dg/stepfunctions-iam.html (startExecution.sync)
        sid: "SyncExecutionEvents",
        actions: ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources: [
          stack.formatArn({
            service: "events",
            resource: "rule",
            resourceName: "StepFunctionsGetEventsForStepFunctionsExecutionRule",
          }),
        ],
      }),
    );
    this.backfill = new StateMachine(this, "Backfill", {
      stateMachineName: this.backfillStateMachineName,
      definitionBody: DefinitionBody.fromFile(`${definitions}backfill.asl.json`),
      definitionSubstitutions: {
        PlanBackfillFunctionArn: this.planBackfill.function.functionArn,
        ExportSliceFunctionArn: this.exportSlice.function.functionArn,
        ReplayChunksFunctionArn: this.replayChunks.function.functionArn,
        FinishRunFunctionArn: this.finishRun.function.functionArn,
        BackfillStateMachineArn: backfillArn,
        BucketName: props.bucket.bucketName,
      },
      role: backfillRole,
      tracingEnabled: true,
      logs: { destination: this.stateMachineLogGroup("BackfillLogs", logRetention), level: LogLevel.ALL },
    });

    const replayRole = new Role(this, "ReplayRole", {
      assumedBy: new ServicePrincipal("states.amazonaws.com"),
      description: "Runs the Loki shipper replay state machine",
    });
    replayRole.addToPolicy(invokeStatement([this.planReplay, this.replayChunks, this.finishRun]));
    this.replay = new StateMachine(this, "Replay", {
      stateMachineName: this.replayStateMachineName,
      definitionBody: DefinitionBody.fromFile(`${definitions}replay.asl.json`),
      definitionSubstitutions: {
        PlanReplayFunctionArn: this.planReplay.function.functionArn,
        ReplayChunksFunctionArn: this.replayChunks.function.functionArn,
        FinishRunFunctionArn: this.finishRun.function.functionArn,
        BucketName: props.bucket.bucketName,
      },
      role: replayRole,
      tracingEnabled: true,
      logs: { destination: this.stateMachineLogGroup("ReplayLogs", logRetention), level: LogLevel.ALL },
    });

    for (const role of [backfillRole, replayRole]) {
      acknowledgeServiceWildcard(
        role,
        "CloudWatch Logs delivery and X-Ray permissions that CDK adds for state machine logging and tracing support only Resource *.",
      );
    }
    acknowledgeWildcardResources(
      backfillRole,
      [backfillExecutions],
      "Child executions of the backfill get names at run time; describe/stop is limited to executions of this state machine.",
    );
  }

  private stateMachineLogGroup(id: string, retention: RetentionDays): LogGroup {
    return new LogGroup(this, id, { retention, removalPolicy: RemovalPolicy.DESTROY });
  }

  /** Each task gets only the S3 prefixes and CloudWatch Logs actions its job needs. */
  private grantFunctionAccess(props: WorkflowsProps, stack: Stack): void {
    const bucket = props.bucket;
    const anyLogGroup = stack.formatArn({
      service: "logs",
      resource: "log-group",
      resourceName: "*",
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const allowObjects = (task: NodeFunction, sid: string, actions: string[], prefixes: string[]) => {
      const resources = prefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`));
      task.function.addToRolePolicy(new PolicyStatement({ sid, actions, resources }));
      prefixes.forEach((prefix, index) => {
        acknowledgeWildcardResources(
          task,
          [resources[index] as string],
          OBJECT_WILDCARD_REASONS[prefix] ?? prefix,
        );
      });
    };
    const allowList = (task: NodeFunction, prefixes: string[]) =>
      task.function.addToRolePolicy(
        new PolicyStatement({
          sid: "ListObjects",
          actions: ["s3:ListBucket"],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { "s3:prefix": prefixes.map((prefix) => `${prefix}*`) } },
        }),
      );
    const allowLogs = (task: NodeFunction, sid: string, actions: string[]) => {
      task.function.addToRolePolicy(new PolicyStatement({ sid, actions, resources: [anyLogGroup] }));
      acknowledgeWildcardResources(
        task,
        [anyLogGroup],
        "Backfill and replay work on log groups the user chooses at run time (by name, prefix or tags).",
      );
    };

    allowLogs(this.planBackfill, "FindLogGroups", ["logs:DescribeLogGroups", "logs:ListTagsForResource"]);
    // The plan resolves every group's labels once; export and replay take them from the plan and chunks.
    if (functionLabelsOn(props.lokiEnvironment))
      grantFunctionLabelLookups(this.planBackfill.function, this.planBackfill, { bulk: true });
    allowObjects(this.planBackfill, "ReadRuns", ["s3:GetObject"], ["runs/"]);
    allowObjects(this.planBackfill, "WriteRuns", ["s3:PutObject"], ["runs/"]);
    allowList(this.planBackfill, ["runs/"]);

    allowLogs(this.exportSlice, "ReadLogEvents", ["logs:FilterLogEvents"]);
    allowObjects(this.exportSlice, "ReadRuns", ["s3:GetObject"], ["runs/"]);
    // A resumed slice deletes the chunks its interrupted invocation wrote after the checkpoint.
    allowObjects(this.exportSlice, "WriteRuns", ["s3:PutObject", "s3:DeleteObject"], ["runs/"]);
    allowList(this.exportSlice, ["runs/"]);
    // The export replays each chunk once it is final, while it reads on: what Loki does not take
    // goes to spill/ or rejected/ with the reason, as from ReplayChunks.
    allowObjects(this.exportSlice, "KeepUndelivered", ["s3:PutObject"], ["spill/", "rejected/"]);

    // The spill drain takes a lock object (conditional PutObject) so that two drains never overlap.
    allowObjects(
      this.planReplay,
      "DrainLock",
      ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      ["locks/"],
    );
    allowObjects(this.planReplay, "ReadRuns", ["s3:GetObject"], ["runs/"]);
    allowObjects(this.planReplay, "WriteRuns", ["s3:PutObject"], ["runs/"]);
    allowList(this.planReplay, ["spill/", "rejected/", "runs/"]);

    allowObjects(this.replayChunks, "ReadChunks", ["s3:GetObject"], ["spill/", "rejected/", "runs/"]);
    allowObjects(
      this.replayChunks,
      "WriteChunks",
      ["s3:PutObject"],
      ["spill/", "rejected/", "malformed/", "runs/", "archive/"],
    );
    allowObjects(this.replayChunks, "RemoveReplayed", ["s3:DeleteObject"], ["spill/", "rejected/"]);
    allowList(this.replayChunks, ["spill/", "rejected/", "runs/"]);
    allowLogs(this.replayChunks, "ReadLogGroupTags", ["logs:ListTagsForResource"]);
    // ExportSlice and ReplayChunks push; PlanReplay asks Loki's /ready before a drain, with the same credentials.
    for (const task of [this.exportSlice, this.replayChunks, this.planReplay]) {
      props.credentialsSecret?.grantRead(task.function);
      props.credentialsParameter?.grantRead(task.function);
    }

    allowObjects(this.finishRun, "ReleaseDrainLock", ["s3:GetObject", "s3:DeleteObject"], ["locks/"]);
    allowObjects(this.finishRun, "ReadRuns", ["s3:GetObject"], ["runs/"]);
    allowObjects(this.finishRun, "WriteRuns", ["s3:PutObject"], ["runs/"]);
    allowList(this.finishRun, ["runs/"]);

    // With a KMS-encrypted bucket the functions need the key as well.
    const key = bucket.encryptionKey;
    if (key) {
      for (const task of [
        this.planBackfill,
        this.exportSlice,
        this.planReplay,
        this.replayChunks,
        this.finishRun,
      ]) {
        key.grantEncryptDecrypt(task.function);
      }
    }
  }
}

const OBJECT_WILDCARD_REASONS: Record<string, string> = {
  "runs/": "Run state (plans, chunks, checkpoints, reports) has keys chosen at run time under runs/.",
  "spill/": "Spilled chunks have keys chosen at run time under spill/; replay reads and then deletes them.",
  "rejected/": "Refused events are kept under rejected/ with keys chosen at run time.",
  "malformed/": "Chunks that cannot be read are moved under malformed/ with keys chosen at run time.",
  "archive/": "Replayed chunks are copied under archive/ (same key as their source) before they are removed.",
  "locks/":
    "The drain lock lives under locks/; its key is fixed by the code, the prefix keeps the grant narrow.",
};

function invokeStatement(functions: NodeFunction[]): PolicyStatement {
  const arns = functions.map((fn) => (fn.function as IFunction).functionArn);
  return new PolicyStatement({
    sid: "InvokeTasks",
    actions: ["lambda:InvokeFunction"],
    resources: arns,
  });
}
