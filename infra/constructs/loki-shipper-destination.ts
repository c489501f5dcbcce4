import { ArnFormat, Stack, type StackProps } from "aws-cdk-lib";
import { CfnDestination } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { DEFAULT_DESTINATION_NAME, type LogSendersProps, parseLogSenders } from "./log-senders.ts";

export interface LokiShipperDestinationStackProps extends StackProps {
  /** ARN of the central intake stream (it may live in another region). */
  readonly streamArn: string;
  /** ARN of the role CloudWatch Logs assumes to put records into the stream. */
  readonly roleArn: string;
  /** The accounts, or the organization, allowed to subscribe. */
  readonly senders: LogSendersProps;
  /**
   * Name of the destination; the same in every region, so that one source template fits all.
   * @default "loki-shipper"
   */
  readonly destinationName?: string;
}

/**
 * One CloudWatch Logs destination in one region of the central account. A log group can only
 * subscribe to a destination of its own region, but the destination may point at a stream in
 * another region, so the central intake needs one of these stacks per source region.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CreateSubscriptionFilter-Account.html
 */
export class LokiShipperDestinationStack extends Stack {
  readonly destination: CfnDestination;
  readonly destinationName: string;
  /** What the sources subscribe to (`LokiShipperSource` `destinationArn`). */
  readonly destinationArn: string;

  constructor(scope: Construct, id: string, props: LokiShipperDestinationStackProps) {
    super(scope, id, props);
    const senders = parseLogSenders("LokiShipperDestinationStack", props.senders);
    this.destinationName = props.destinationName ?? DEFAULT_DESTINATION_NAME;
    this.destinationArn = this.formatArn({
      service: "logs",
      resource: "destination",
      resourceName: this.destinationName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    // PutAccountPolicy for account-level policies, PutSubscriptionFilter for group-level filters.
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CreateDestination-Account.html
    const allow = {
      Sid: "LokiShipperSenders",
      Effect: "Allow",
      Action: ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"],
      Resource: this.destinationArn,
    };
    const statement =
      senders.kind === "accounts"
        ? { ...allow, Principal: { AWS: senders.accountIds } }
        : {
            ...allow,
            Principal: "*",
            Condition: { StringEquals: { "aws:PrincipalOrgID": [senders.organizationId] } },
          };
    this.destination = new CfnDestination(this, "Destination", {
      destinationName: this.destinationName,
      targetArn: props.streamArn,
      roleArn: props.roleArn,
      destinationPolicy: this.toJsonString({ Version: "2012-10-17", Statement: [statement] }),
    });
  }
}
