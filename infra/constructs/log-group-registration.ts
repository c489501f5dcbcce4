import { ArnFormat, CustomResource, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { Rule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Provider } from "aws-cdk-lib/custom-resources";
import { Construct } from "constructs";
import { handlerCode } from "./lambda-handlers.ts";
import { acknowledgeWildcardResources } from "./nag.ts";
import { NodeFunction } from "./node-function.ts";

/** One selection of log groups (names and prefixes add, a tag selector narrows). */
export interface LogGroupSelectionProps {
  /**
   * Exact log group names.
   * @default - none
   */
  readonly names?: string[];
  /**
   * Log group name prefixes, e.g. "/aws/lambda/fun-".
   * @default - none
   */
  readonly prefixes?: string[];
  /**
   * LogQL-style tag matchers, e.g. `system_under_test="demo"`.
   * @default - no tag condition
   */
  readonly tagSelector?: string;
}

export interface LogGroupRegistrationProps {
  /** The shipper Lambda the log groups deliver to. */
  readonly shipper: IFunction;
  /**
   * Which log groups to subscribe, at deploy time and (with subscribeNewLogGroups) when created later.
   * @default - none: only log groups registered explicitly (FunctionLogGroup, CLI link)
   */
  readonly selections?: LogGroupSelectionProps[];
  /**
   * Subscribe log groups created or tagged later, from CloudTrail events through EventBridge.
   * Needs a CloudTrail trail that records management events in the account and region.
   * @default true
   */
  readonly subscribeNewLogGroups?: boolean;
  /**
   * Log groups never subscribed; the shipper's and the registrar's own are always added.
   * @default - the pipeline's own log groups only
   */
  readonly excludedLogGroups?: string[];
  /**
   * Name of the subscription filter put on each log group.
   * @default "loki-shipper"
   */
  readonly filterName?: string;
  /**
   * CloudWatch Logs filter pattern of the subscription ("" forwards everything).
   * @default ""
   */
  readonly filterPattern?: string;
  /**
   * Where EventBridge keeps registration events it could not deliver.
   * @default - none
   */
  readonly deadLetterQueue?: IQueue;
  /**
   * Retention of the registrar's log groups.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * Subscribes log groups to the shipper automatically: a custom resource at deploy time for the
 * groups that already exist, and an EventBridge rule on CloudTrail's CreateLogGroup / TagResource
 * events for those created or tagged later. Both run the same registrar Lambda, which never
 * subscribes an excluded (own) log group. Why not an account-level subscription filter policy:
 * see infra/README.md.
 */
export class LogGroupRegistration extends Construct {
  readonly registrar: NodeFunction;
  /** Service token for `Custom::LokiShipperRegistration` resources in other stacks (FunctionLogGroup). */
  readonly serviceToken: string;
  readonly rule?: Rule;
  /** Log group of the custom resource provider framework's own function. */
  readonly providerLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: LogGroupRegistrationProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const retention = props.logRetention ?? RetentionDays.ONE_MONTH;
    this.registrar = new NodeFunction(this, "Registrar", {
      ...handlerCode("register-log-groups"),
      description: "Subscribes selected CloudWatch Logs log groups to the Loki shipper",
      timeout: Duration.minutes(10),
      logRetention: retention,
      serviceName: "loki-shipper-registrar",
    });
    const providerLogGroup = new LogGroup(this, "ProviderLogGroup", {
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.providerLogGroup = providerLogGroup;
    const excluded = [
      ...(props.excludedLogGroups ?? []),
      this.registrar.logGroupName,
      providerLogGroup.logGroupName,
    ];
    const selections = props.selections ?? [];
    const registrarFunction = this.registrar.function;
    registrarFunction.addEnvironment("DESTINATION_ARN", props.shipper.functionArn);
    registrarFunction.addEnvironment("FILTER_NAME", props.filterName ?? "loki-shipper");
    registrarFunction.addEnvironment("FILTER_PATTERN", props.filterPattern ?? "");
    registrarFunction.addEnvironment("REGISTRATION_SELECTIONS", JSON.stringify(selections));
    registrarFunction.addEnvironment("EXCLUDED_LOG_GROUPS", stack.toJsonString(excluded));

    const anyLogGroup = stack.formatArn({
      service: "logs",
      resource: "log-group",
      resourceName: "*",
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    registrarFunction.addToRolePolicy(
      new PolicyStatement({
        sid: "LinkLogGroups",
        actions: [
          "logs:DescribeLogGroups",
          "logs:DescribeSubscriptionFilters",
          "logs:PutSubscriptionFilter",
          "logs:DeleteSubscriptionFilter",
          "logs:ListTagsForResource",
        ],
        resources: [anyLogGroup],
      }),
    );
    acknowledgeWildcardResources(
      this.registrar,
      [anyLogGroup],
      "The registrar links log groups chosen by prefix or tags at run time, including groups created after deployment, so it needs log-group:* for these five CloudWatch Logs actions only.",
    );

    const provider = new Provider(this, "Provider", {
      onEventHandler: registrarFunction,
      logGroup: providerLogGroup,
    });
    this.serviceToken = provider.serviceToken;
    Validations.of(provider).acknowledge(
      {
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        reason:
          "The CDK custom resource provider framework uses AWSLambdaBasicExecutionRole for its own logs.",
      },
      {
        id: "AwsSolutions-L1",
        reason: "The CDK provider framework chooses its own Node.js runtime; it is updated with aws-cdk-lib.",
      },
    );
    acknowledgeWildcardResources(
      provider,
      [`${registrarFunction.functionArn}:*`],
      "The CDK provider framework may invoke any version of the registrar (ARN:*); nothing else.",
    );

    if (selections.length > 0) {
      new CustomResource(this, "ExistingLogGroups", {
        serviceToken: this.serviceToken,
        resourceType: "Custom::LokiShipperRegistration",
        properties: { Selections: JSON.stringify(selections), DestinationArn: props.shipper.functionArn },
      });
    }

    if ((props.subscribeNewLogGroups ?? true) && selections.length > 0) {
      this.rule = new Rule(this, "NewLogGroups", {
        description: "Log groups created or tagged later: subscribe them if they match the selections",
        eventPattern: {
          source: ["aws.logs"],
          detailType: ["AWS API Call via CloudTrail"],
          detail: {
            eventSource: ["logs.amazonaws.com"],
            eventName: ["CreateLogGroup", "TagResource", "TagLogGroup"],
          },
        },
        targets: [
          new LambdaFunction(registrarFunction, {
            retryAttempts: 4,
            maxEventAge: Duration.hours(2),
            ...(props.deadLetterQueue ? { deadLetterQueue: props.deadLetterQueue } : {}),
          }),
        ],
      });
    }
  }
}
