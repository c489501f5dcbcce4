import { CustomResource, RemovalPolicy, Stack, Tags } from "aws-cdk-lib";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

/** What a workload is; each field becomes a tag of its log group, and so a Loki label. */
export interface FunctionMetadata {
  /** Team or person that owns the function (tag `owner`). */
  readonly owner: string;
  /**
   * Language runtime family, e.g. "python" or "nodejs" (tag `runtime`).
   * @default - no tag: the shipper derives `runtime` from the function's configuration
   */
  readonly runtime?: string;
  /** The system the function belongs to or tests (tag `system_under_test`). */
  readonly systemUnderTest: string;
  /**
   * Further tags; keys that are not valid Loki label names are sanitised by the shipper.
   * @default - none
   */
  readonly extraTags?: Record<string, string>;
}

/** How a log group asks the pipeline to subscribe it (see LogGroupRegistration.serviceToken). */
export interface RegistrationTarget {
  /** Service token of the pipeline's registration custom resource provider. */
  readonly serviceToken: string;
}

export interface FunctionLogGroupProps {
  /** Name of the Lambda function whose log group this is; the group is `/aws/lambda/<name>`. */
  readonly functionName: string;
  /** Tags describing the function. */
  readonly metadata: FunctionMetadata;
  /**
   * How long CloudWatch keeps the events (Loki keeps its own copy).
   * @default RetentionDays.ONE_WEEK
   */
  readonly retention?: RetentionDays;
  /**
   * Subscribe the log group to the shipper as soon as it exists, through the pipeline's registrar.
   * @default - not subscribed here (the registrar may still pick it up by prefix or tags)
   */
  readonly registration?: RegistrationTarget;
  /**
   * Put the tags on the log group. Off, the group stays untagged as Lambda would create it, and the
   * shipper reads the function's tags instead (use `applyTagsTo` on the function).
   * @default true
   */
  readonly tagLogGroup?: boolean;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The log group of a function deployed with this project, created explicitly (not implicitly by
 * Lambda on first write) so that it exists with its tags before the first event: name, owner,
 * runtime, region and system_under_test. The shipper turns those tags into Loki labels, which is
 * what makes `{runtime="python", region="eu-central-1", name=~"fun.*"}` work.
 */
export class FunctionLogGroup extends Construct {
  readonly logGroup: LogGroup;
  readonly tags: Record<string, string>;

  constructor(scope: Construct, id: string, props: FunctionLogGroupProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, "LogGroup", {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: props.retention ?? RetentionDays.ONE_WEEK,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.tags = {
      ...props.metadata.extraTags,
      name: props.functionName,
      owner: props.metadata.owner,
      ...(props.metadata.runtime ? { runtime: props.metadata.runtime } : {}),
      region: Stack.of(this).region,
      system_under_test: props.metadata.systemUnderTest,
    };
    if (props.tagLogGroup ?? true)
      for (const [key, value] of Object.entries(this.tags)) Tags.of(this.logGroup).add(key, value);
    if (props.registration) {
      const subscription = new CustomResource(this, "Subscription", {
        serviceToken: props.registration.serviceToken,
        resourceType: "Custom::LokiShipperRegistration",
        properties: { Selections: Stack.of(this).toJsonString([{ names: [this.logGroup.logGroupName] }]) },
      });
      subscription.node.addDependency(this.logGroup);
    }
  }

  /** The tags, to put on the function (too). */
  applyTagsTo(scope: Construct): void {
    for (const [key, value] of Object.entries(this.tags)) Tags.of(scope).add(key, value);
  }
}
