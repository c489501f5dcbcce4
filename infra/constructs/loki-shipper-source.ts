import { Arn, ArnFormat, Aws, CfnCondition, Fn, Stack } from "aws-cdk-lib";
import {
  AccountPrincipal,
  type CfnRole,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from "aws-cdk-lib/aws-iam";
import { CfnAccountPolicy, CfnSubscriptionFilter } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { DEFAULT_DESTINATION_NAME, DEFAULT_READER_ROLE_NAME, regionalFilterName } from "./log-senders.ts";
import type { LokiShipper } from "./loki-shipper.ts";
import { acknowledgeServiceWildcard, acknowledgeWildcardResources } from "./nag.ts";

/** The role the central pipeline assumes to read this account (log group tags, functions, events). */
export interface SourceReaderRoleProps {
  /** Role ARNs of the central functions (the intake's `ReaderTrustedRoleArns` output); `*` patterns allowed. */
  readonly trustedRoleArns: string[];
  /**
   * Name of the role, the same in every source account.
   * @default "loki-shipper-reader"
   */
  readonly roleName?: string;
  /**
   * The one region that creates the role: IAM is global, and a StackSet deploys this stack to
   * every region of the account.
   */
  readonly region: string;
}

export interface LokiShipperSourceProps {
  /**
   * ARN of the destination in this region.
   * @default - built from centralAccountId, destinationName and the stack's region
   */
  readonly destinationArn?: string;
  /**
   * The central account, when destinationArn is not given (one template for every region).
   * @default - none: give destinationArn
   */
  readonly centralAccountId?: string;
  /**
   * Name of the destination in the central account.
   * @default "loki-shipper"
   */
  readonly destinationName?: string;
  /**
   * `account-policy`: one account-level subscription filter policy covers every log group, present
   * and future, but excludedLogGroups (an account has one such policy per region). `group-filters`:
   * a subscription filter on each of logGroupNames, for an account whose policy is taken.
   * @default "account-policy"
   */
  readonly mode?: "account-policy" | "group-filters";
  /**
   * The log groups to subscribe in `group-filters` mode; groups created later need a stack update.
   * @default - none (required in group-filters mode)
   */
  readonly logGroupNames?: string[];
  /**
   * Log groups the account policy leaves out (`LogGroupName NOT IN [...]`, the only selection that
   * policy type accepts).
   * @default - none
   */
  readonly excludedLogGroups?: string[];
  /**
   * The pipeline, when it runs in this same account and region: its own log groups are excluded,
   * or the shipper would ship its own logs in a loop.
   * @default - none
   */
  readonly pipeline?: LokiShipper;
  /**
   * CloudWatch Logs filter pattern ("" forwards everything).
   * @default ""
   */
  readonly filterPattern?: string;
  /**
   * Set when the destinations allow an organization rather than listed accounts: the subscription
   * then names a role of this account that CloudWatch Logs assumes.
   * @default false
   */
  readonly organizationSender?: boolean;
  /**
   * The reader role, or `false` for none (events then ship with the labels known without it).
   */
  readonly readerRole: SourceReaderRoleProps | false;
}

/**
 * What one source account and region needs to ship its logs to the central account: the
 * subscription (an account-level policy or group-level filters) to the central destination,
 * named `loki-shipper-<region>` so that the shipper knows the events' region, and the reader role.
 * Meant for a StackSet over an organizational unit (see the README's "Many accounts").
 */
export class LokiShipperSource extends Construct {
  readonly filterName: string;
  readonly destinationArn: string;
  readonly accountPolicy?: CfnAccountPolicy;
  readonly subscriptionFilters: CfnSubscriptionFilter[] = [];
  readonly senderRole?: Role;
  readonly readerRole?: Role;

  constructor(scope: Construct, id: string, props: LokiShipperSourceProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.filterName = regionalFilterName(stack.region);
    this.destinationArn = destinationArnOf(stack, props);
    if (props.organizationSender) this.senderRole = this.createSenderRole();
    const mode = props.mode ?? "account-policy";
    if (mode === "account-policy") this.accountPolicy = this.subscribeAccount(props);
    else this.subscribeGroups(props);
    if (props.readerRole !== false) this.readerRole = this.createReaderRole(props.readerRole);
  }

  private subscribeAccount(props: LokiShipperSourceProps): CfnAccountPolicy {
    const stack = Stack.of(this);
    if (props.logGroupNames?.length) {
      throw new Error(
        'LokiShipperSource: logGroupNames are for mode "group-filters"; the account policy covers every log group. Received: logGroupNames with mode "account-policy"',
      );
    }
    const excluded = [...(props.excludedLogGroups ?? []), ...ownLogGroups(props.pipeline)];
    return new CfnAccountPolicy(this, "AccountSubscription", {
      policyName: this.filterName,
      policyType: "SUBSCRIPTION_FILTER_POLICY",
      scope: "ALL",
      policyDocument: stack.toJsonString({
        DestinationArn: this.destinationArn,
        FilterPattern: props.filterPattern ?? "",
        ...(this.senderRole ? { RoleArn: this.senderRole.roleArn } : {}),
      }),
      ...(excluded.length > 0
        ? { selectionCriteria: `LogGroupName NOT IN ${stack.toJsonString(excluded)}` }
        : {}),
    });
  }

  private subscribeGroups(props: LokiShipperSourceProps): void {
    const names = props.logGroupNames ?? [];
    if (names.length === 0) {
      throw new Error('LokiShipperSource: mode "group-filters" needs logGroupNames. Received: none');
    }
    names.forEach((logGroupName, index) => {
      this.subscriptionFilters.push(
        new CfnSubscriptionFilter(this, `Subscription${index}`, {
          logGroupName,
          filterName: this.filterName,
          filterPattern: props.filterPattern ?? "",
          destinationArn: this.destinationArn,
          ...(this.senderRole ? { roleArn: this.senderRole.roleArn } : {}),
        }),
      );
    });
  }

  /** With an organization in the destination policy, AWS requires a sender-side role on the subscription. */
  private createSenderRole(): Role {
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CreateSubscriptionFilter-IAMrole-Account.html
    return new Role(this, "SenderRole", {
      description:
        "Assumed by CloudWatch Logs to deliver this account's subscribed events to the loki-shipper destination",
      assumedBy: new ServicePrincipal("logs.amazonaws.com"),
      inlinePolicies: {
        deliver: new PolicyDocument({
          statements: [
            new PolicyStatement({ actions: ["logs:PutLogEvents"], resources: [this.destinationArn] }),
          ],
        }),
      },
    });
  }

  private createReaderRole(reader: SourceReaderRoleProps): Role {
    const centralAccount = centralAccountOf(reader.trustedRoleArns);
    const role = new Role(this, "ReaderRole", {
      roleName: reader.roleName ?? DEFAULT_READER_ROLE_NAME,
      description:
        "Assumed by the central loki-shipper functions to read log group tags, functions and events",
      // The account as principal and the roles as a condition: unlike role ARNs as principals, this
      // does not need the central roles to exist when the StackSet creates it.
      assumedBy: new AccountPrincipal(centralAccount).withConditions({
        ArnLike: { "aws:PrincipalArn": reader.trustedRoleArns },
      }),
      inlinePolicies: { read: readerPolicy(this) },
    });
    const onlyInItsRegion = new CfnCondition(this, "ReaderRoleRegion", {
      expression: Fn.conditionEquals(Aws.REGION, reader.region),
    });
    (role.node.defaultChild as CfnRole).cfnOptions.condition = onlyInItsRegion;
    return role;
  }
}

/** What the central functions call in a source account (functions/core/accounts, labels, cloudwatch). */
function readerPolicy(scope: Construct): PolicyDocument {
  const stack = Stack.of(scope);
  // The role is global: it reads the log groups and functions of every region of its account.
  const anyLogGroup = stack.formatArn({
    service: "logs",
    region: "*",
    resource: "log-group",
    resourceName: "*",
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  const anyFunction = stack.formatArn({
    service: "lambda",
    region: "*",
    resource: "function",
    resourceName: "*",
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  acknowledgeWildcardResources(
    scope,
    [anyLogGroup, anyFunction],
    "The central shipper reads whichever log groups of this account deliver to it, in any region, and the functions behind them.",
  );
  acknowledgeServiceWildcard(scope, "lambda:ListFunctions supports only Resource *.");
  return new PolicyDocument({
    statements: [
      new PolicyStatement({
        sid: "ReadLogGroups",
        actions: ["logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:FilterLogEvents"],
        resources: [anyLogGroup],
      }),
      new PolicyStatement({
        sid: "ReadFunctionLabels",
        actions: ["lambda:GetFunction"],
        resources: [anyFunction],
      }),
      new PolicyStatement({ sid: "ListFunctionLabels", actions: ["lambda:ListFunctions"], resources: ["*"] }),
    ],
  });
}

function destinationArnOf(stack: Stack, props: LokiShipperSourceProps): string {
  if ((props.destinationArn === undefined) === (props.centralAccountId === undefined)) {
    throw new Error(
      `LokiShipperSource: give destinationArn or centralAccountId, exactly one of the two. Received: ${props.destinationArn ? "both" : "neither"}`,
    );
  }
  if (props.destinationArn !== undefined) return props.destinationArn;
  if (!/^\d{12}$/.test(props.centralAccountId ?? "")) {
    throw new Error(
      `LokiShipperSource: centralAccountId must be a 12-digit AWS account id. Received: "${props.centralAccountId}"`,
    );
  }
  return stack.formatArn({
    service: "logs",
    account: props.centralAccountId,
    resource: "destination",
    resourceName: props.destinationName ?? DEFAULT_DESTINATION_NAME,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

function centralAccountOf(trustedRoleArns: string[]): string {
  const accounts = new Set(
    trustedRoleArns.map((arn) =>
      /^arn:aws[a-z-]*:iam::\d{12}:role\/\S+$/.test(arn)
        ? Arn.split(arn, ArnFormat.SLASH_RESOURCE_NAME).account
        : "",
    ),
  );
  const [account] = [...accounts];
  if (trustedRoleArns.length === 0 || accounts.size !== 1 || !account) {
    throw new Error(
      `LokiShipperSource: readerRole.trustedRoleArns must be IAM role ARNs of one central account. Received: ${JSON.stringify(trustedRoleArns)}`,
    );
  }
  return account;
}

function ownLogGroups(pipeline: LokiShipper | undefined): string[] {
  if (!pipeline) return [];
  return [...pipeline.ownLogGroupNames, pipeline.registration.providerLogGroup.logGroupName];
}
