/**
 * Who may send log events to the central account: listed accounts, or every account of an AWS
 * Organization. Shared by the destinations' access policy and the intake's role trust.
 */
export interface LogSendersProps {
  /**
   * The source accounts (12-digit ids) whose log groups may subscribe to the destinations.
   * @default - none: give organizationId
   */
  readonly accountIds?: string[];
  /**
   * An AWS Organizations id (`o-...`): every account of the organization may subscribe
   * (destination policy condition `aws:PrincipalOrgID`). Their subscriptions then need a role of
   * their own (`LokiShipperSource` `organizationSender: true`).
   * @default - none: give accountIds
   */
  readonly organizationId?: string;
}

export type LogSenders =
  | { kind: "accounts"; accountIds: string[] }
  | { kind: "organization"; organizationId: string };

const ACCOUNT_ID = /^\d{12}$/;
// https://docs.aws.amazon.com/organizations/latest/APIReference/API_Organization.html (Id pattern)
const ORGANIZATION_ID = /^o-[a-z0-9]{10,32}$/;

/** Checks the senders, naming the construct and the bad value; exactly one of the two forms. */
export function parseLogSenders(owner: string, senders: LogSendersProps): LogSenders {
  const { accountIds, organizationId } = senders;
  if ((accountIds === undefined) === (organizationId === undefined)) {
    throw new Error(
      `${owner}: senders needs accountIds or organizationId, exactly one of the two. Received: ${accountIds ? "both" : "neither"}`,
    );
  }
  if (organizationId !== undefined) {
    if (!ORGANIZATION_ID.test(organizationId)) {
      throw new Error(
        `${owner}: senders.organizationId must be an AWS Organizations id such as o-a1b2c3d4e5. Received: "${organizationId}"`,
      );
    }
    return { kind: "organization", organizationId };
  }
  const ids = accountIds ?? [];
  const invalid = ids.filter((id) => !ACCOUNT_ID.test(id));
  if (ids.length === 0 || invalid.length > 0) {
    throw new Error(
      `${owner}: senders.accountIds must list 12-digit AWS account ids. Received: ${JSON.stringify(ids.length === 0 ? ids : invalid)}`,
    );
  }
  return { kind: "accounts", accountIds: [...new Set(ids)] };
}

/** The subscription filter or account policy name that tells the shipper the source region. */
export function regionalFilterName(region: string): string {
  return `loki-shipper-${region}`;
}

export const DEFAULT_DESTINATION_NAME = "loki-shipper";
export const DEFAULT_READER_ROLE_NAME = "loki-shipper-reader";
