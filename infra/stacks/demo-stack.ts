import { fileURLToPath } from "node:url";
import { Duration, Stack, type StackProps, Validations } from "aws-cdk-lib";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import {
  Architecture,
  Code,
  Function as LambdaFn,
  LoggingFormat,
  Runtime,
  Tracing,
} from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { FunctionLogGroup, type RegistrationTarget } from "../constructs/function-log-group.ts";
import { acknowledgeServiceWildcard } from "../constructs/nag.ts";
import { NodeFunction } from "../constructs/node-function.ts";

export interface DemoStackProps extends StackProps {
  /** Owner tag of the sample functions. */
  readonly owner: string;
  /** system_under_test tag of the sample functions. */
  readonly systemUnderTest: string;
  /**
   * Subscribe the sample functions' log groups through the pipeline's registrar.
   * @default - not subscribed by this stack
   */
  readonly registration?: RegistrationTarget;
  /**
   * How often the schedule invokes the sample functions.
   * @default Duration.minutes(1)
   */
  readonly interval?: Duration;
  /**
   * Retention of the sample functions' log groups.
   * @default RetentionDays.ONE_WEEK
   */
  readonly logRetention?: RetentionDays;
}

const DEMO_DIR = fileURLToPath(new URL("../demo-functions/", import.meta.url));

/**
 * Two sample functions, fun-python (python3.12) and fun-node, invoked every minute, tagged with
 * their metadata; their log groups are created up front (for retention and subscription) but
 * left untagged. After deployment
 * `{runtime="python", region="eu-central-1", name=~"fun.*"}` finds the Python one in Loki.
 */
export class DemoStack extends Stack {
  readonly pythonFunction: LambdaFn;
  readonly nodeFunction: NodeFunction;
  readonly logGroups: FunctionLogGroup[];

  constructor(scope: Construct, id: string, props: DemoStackProps) {
    super(scope, id, props);
    // The functions are tagged, their log groups are not (as when Lambda creates them): the
    // shipper labels the events with the function's tags and its runtime's family.
    const metadata = { owner: props.owner, systemUnderTest: props.systemUnderTest };
    const pythonLogs = new FunctionLogGroup(this, "FunPythonLogs", {
      functionName: "fun-python",
      metadata,
      tagLogGroup: false,
      retention: props.logRetention,
      registration: props.registration,
    });
    const pythonRole = new Role(this, "FunPythonRole", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: "Runs the fun-python sample function",
    });
    pythonLogs.logGroup.grantWrite(pythonRole);
    this.pythonFunction = new LambdaFn(this, "FunPython", {
      functionName: "fun-python",
      description: "Sample Python function that logs every minute",
      runtime: Runtime.PYTHON_3_12,
      architecture: Architecture.ARM_64,
      handler: "handler.handler",
      code: Code.fromAsset(`${DEMO_DIR}python`),
      timeout: Duration.seconds(10),
      tracing: Tracing.ACTIVE,
      logGroup: pythonLogs.logGroup,
      role: pythonRole,
    });
    Validations.of(this.pythonFunction).acknowledge({
      id: "AwsSolutions-L1",
      reason:
        "The sample pins a Python runtime that Lambda offers in every region today; it only prints log lines.",
    });
    acknowledgeServiceWildcard(
      pythonRole,
      "X-Ray tracing (PutTraceSegments, PutTelemetryRecords) supports only Resource *.",
    );
    pythonLogs.applyTagsTo(this.pythonFunction);

    const nodeLogs = new FunctionLogGroup(this, "FunNodeLogs", {
      functionName: "fun-node",
      metadata,
      tagLogGroup: false,
      retention: props.logRetention,
      registration: props.registration,
    });
    this.nodeFunction = new NodeFunction(this, "FunNode", {
      functionName: "fun-node",
      entry: `${DEMO_DIR}node/handler.ts`,
      description: "Sample Node.js function that logs every minute",
      timeout: Duration.seconds(10),
      memorySize: 128,
      logGroup: nodeLogs.logGroup,
      // Lambda's JSON log format: the report comes as a platform.report record, while fun-python's
      // text format gives REPORT lines; the shipper reads the figures of both (lambda-report.ts).
      loggingFormat: LoggingFormat.JSON,
      serviceName: "fun-node",
    });
    nodeLogs.applyTagsTo(this.nodeFunction.function);
    this.logGroups = [pythonLogs, nodeLogs];

    new Rule(this, "EveryMinute", {
      description: "Invokes the sample functions so that they log",
      schedule: Schedule.rate(props.interval ?? Duration.minutes(1)),
      targets: [new LambdaFunction(this.pythonFunction), new LambdaFunction(this.nodeFunction.function)],
    });
  }
}
