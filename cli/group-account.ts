import { InputError } from "../functions/core/errors.ts";
import { functionLookupClientsLike } from "../functions/core/labels/function-lookup.ts";
import { parseLogGroupArn } from "../functions/core/workflow/backfill-request.ts";
import { accountAccessLike } from "../functions/core/workflow/source-access.ts";
import type { AwsClients } from "./aws.ts";

/** The clients a command reads one log group with, in the group's account and region. */
export interface GroupInAccount {
  logGroup: string;
  clients: Pick<AwsClients, "logs" | "lambda" | "region">;
  /** Set when the group was named in another account or region (an ARN or --account). */
  account?: string;
}

/**
 * A log group given by name (in `--account`, default: the caller's own) or by ARN, with the
 * clients that read it: the caller's own at home, the account's reader role (SOURCE_READER_ROLE_NAME,
 * default loki-shipper-reader) elsewhere, which the caller must be allowed to assume.
 */
export async function groupInAccount(
  clients: AwsClients,
  nameOrArn: string,
  account: string | undefined,
): Promise<GroupInAccount> {
  if (account !== undefined && !/^\d{12}$/.test(account))
    throw new InputError(`--account must be a 12-digit AWS account id, got ${JSON.stringify(account)}`);
  const arn = nameOrArn.startsWith("arn:") ? parseLogGroupArn(nameOrArn) : undefined;
  if (nameOrArn.startsWith("arn:") && !arn)
    throw new InputError(
      `${nameOrArn} is not a log group ARN: expected arn:aws:logs:<region>:<12-digit account>:log-group:<name>`,
    );
  const logGroup = arn?.logGroup ?? nameOrArn;
  const wanted = arn ?? (account ? { account, region: clients.region } : undefined);
  if (!wanted) return { logGroup, clients };
  const access = accountAccessLike(clients.logs, functionLookupClientsLike(clients.logs), process.env);
  const { logs, functions } = await access.clients(wanted);
  return {
    logGroup,
    clients: { logs, lambda: functions.lambda, region: wanted.region },
    account: `${wanted.account} (${wanted.region})`,
  };
}
