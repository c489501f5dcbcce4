import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import {
  Architecture,
  Code,
  type FunctionOptions,
  type FunctionProps,
  Function as LambdaFunction,
  LoggingFormat,
  Runtime,
  Tracing,
} from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { type ILogGroup, LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { LAMBDA_BUNDLE } from "./lambda-handlers.ts";
import { acknowledgeServiceWildcard } from "./nag.ts";

export interface NodeFunctionProps extends Omit<FunctionOptions, "architecture" | "logGroup" | "tracing"> {
  /**
   * Path of the TypeScript handler file to bundle.
   */
  readonly entry: string;
  /**
   * A directory with the handler already bundled (`index.mjs` exporting `handler`, and its source
   * map), deployed as it is instead of bundling `entry`.
   * @default - `entry` is bundled with esbuild at synth time
   */
  readonly bundleDirectory?: string;
  /**
   * Packages the bundle leaves to the Lambda runtime (which provides the AWS SDK v3).
   * @default ["@aws-sdk/*"]
   */
  readonly externalModules?: readonly string[];
  /**
   * How long the function's log group keeps events.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.DESTROY (the logs are shipped; keeping them is the operator's choice)
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * A log group made elsewhere (e.g. a tagged FunctionLogGroup); logRetention and logRemovalPolicy then do not apply.
   * @default - a new log group with logRetention
   */
  readonly logGroup?: ILogGroup;
  /**
   * Service name in the Powertools logger output.
   * @default the construct id
   */
  readonly serviceName?: string;
}

// Bundle against this repository's lock file and node_modules, wherever the CDK app runs from.
const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Every Lambda of the project goes through this wrapper, so they share one set of defaults:
 * Node.js 22 on arm64, ESM output minified with source maps, an explicit log group with
 * retention (not the implicit one Lambda creates without retention), JSON logs and X-Ray tracing.
 * Bundling uses the project's own esbuild, never Docker, so `cdk synth` works offline; a
 * pre-built bundle (the installed package's) is deployed as it is.
 */
export class NodeFunction extends Construct {
  readonly function: LambdaFunction;
  readonly logGroup: ILogGroup;

  constructor(scope: Construct, id: string, props: NodeFunctionProps) {
    super(scope, id);
    const {
      logRetention,
      logRemovalPolicy,
      serviceName,
      entry,
      bundleDirectory,
      externalModules,
      environment,
      logGroup,
      ...functionProps
    } = props;
    this.logGroup =
      logGroup ??
      new LogGroup(this, "LogGroup", {
        retention: logRetention ?? RetentionDays.ONE_MONTH,
        removalPolicy: logRemovalPolicy ?? RemovalPolicy.DESTROY,
      });
    // Its own role with write access to its own log group only, instead of the managed
    // AWSLambdaBasicExecutionRole, which allows writing to every log group of the account.
    const role =
      functionProps.role ??
      new Role(this, "Role", {
        assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
        description: `Runs ${this.node.path}`,
      });
    this.logGroup.grantWrite(role);
    const settings: FunctionSettings = {
      memorySize: 256,
      timeout: Duration.seconds(60),
      loggingFormat: LoggingFormat.JSON,
      ...functionProps,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      logGroup: this.logGroup,
      role,
      environment: {
        POWERTOOLS_SERVICE_NAME: serviceName ?? id,
        // Stack traces point at the TypeScript sources (the bundle ships its .map file).
        NODE_OPTIONS: "--enable-source-maps",
        ...environment,
      },
    };
    this.function = createFunction(this, settings, {
      entry,
      bundleDirectory,
      externalModules: externalModules ?? LAMBDA_BUNDLE.external,
    });
    acknowledgeServiceWildcard(
      this,
      "X-Ray tracing (PutTraceSegments, PutTelemetryRecords) supports only Resource *.",
    );
    Validations.of(this.function).acknowledge({
      id: "AwsSolutions-L1",
      reason:
        "The project pins nodejs22.x, the Node.js version it is built and tested with; a newer runtime is adopted together with the toolchain.",
    });
  }

  /** Name of the log group, e.g. to keep the registrar from subscribing it. */
  get logGroupName(): string {
    return this.logGroup.logGroupName;
  }
}

type FunctionSettings = Omit<FunctionProps, "code" | "handler">;

interface FunctionCode {
  entry: string;
  bundleDirectory: string | undefined;
  externalModules: readonly string[];
}

/** The pre-built bundle as it is, or the entry bundled at synth with the same esbuild settings. */
function createFunction(
  scope: Construct,
  settings: FunctionSettings,
  { entry, bundleDirectory, externalModules }: FunctionCode,
): LambdaFunction {
  if (bundleDirectory) {
    return new LambdaFunction(scope, "Function", {
      ...settings,
      code: Code.fromAsset(bundleDirectory),
      handler: "index.handler",
    });
  }
  return new NodejsFunction(scope, "Function", {
    ...settings,
    entry,
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
    bundling: {
      format: OutputFormat.ESM,
      platform: "node",
      target: LAMBDA_BUNDLE.target,
      minify: LAMBDA_BUNDLE.minify,
      sourceMap: LAMBDA_BUNDLE.sourceMap,
      sourcesContent: LAMBDA_BUNDLE.sourcesContent,
      mainFields: [...LAMBDA_BUNDLE.mainFields],
      banner: LAMBDA_BUNDLE.banner,
      externalModules: [...externalModules],
      forceDockerBundling: false,
    },
  });
}
