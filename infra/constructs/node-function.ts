import { Duration, RemovalPolicy } from "aws-cdk-lib";
import { Architecture, LoggingFormat, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, type NodejsFunctionProps, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

export interface NodeFunctionProps
  extends Omit<NodejsFunctionProps, "entry" | "runtime" | "architecture" | "logGroup" | "tracing"> {
  /**
   * Path of the TypeScript handler file to bundle.
   */
  readonly entry: string;
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
   * Service name in the Powertools logger output.
   * @default the construct id
   */
  readonly serviceName?: string;
}

// esbuild writes ESM; some dependencies still call require(), which ESM lacks.
const REQUIRE_SHIM =
  "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

/**
 * Every Lambda of the project goes through this wrapper, so they share one set of defaults:
 * Node.js 22 on arm64, ESM output minified with source maps, an explicit log group with
 * retention (not the implicit one Lambda creates without retention), JSON logs and X-Ray tracing.
 * Bundling uses the project's own esbuild, never Docker, so `cdk synth` works offline.
 */
export class NodeFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: NodeFunctionProps) {
    super(scope, id);
    const { logRetention, logRemovalPolicy, serviceName, bundling, environment, ...functionProps } = props;
    this.logGroup = new LogGroup(this, "LogGroup", {
      retention: logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.function = new NodejsFunction(this, "Function", {
      memorySize: 256,
      timeout: Duration.seconds(60),
      loggingFormat: LoggingFormat.JSON,
      ...functionProps,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      logGroup: this.logGroup,
      environment: {
        POWERTOOLS_SERVICE_NAME: serviceName ?? id,
        ...environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: "node22",
        platform: "node",
        minify: true,
        sourceMap: true,
        mainFields: ["module", "main"],
        banner: REQUIRE_SHIM,
        forceDockerBundling: false,
        ...bundling,
      },
    });
  }

  /** Name of the log group, e.g. to keep the registrar from subscribing it. */
  get logGroupName(): string {
    return this.logGroup.logGroupName;
  }
}
