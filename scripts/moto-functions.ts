import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateFunctionCommand, LambdaClient, type Runtime } from "@aws-sdk/client-lambda";

/**
 * A one-file zip archive (stored, no compression), enough for moto's CreateFunction, which keeps
 * the code but never runs it. Layout per the ZIP application note (APPNOTE.TXT, sections 4.3.7,
 * 4.3.12 and 4.3.16).
 */
export function zipOneFile(fileName: string, content: string): Uint8Array {
  const name = Buffer.from(fileName, "utf8");
  const data = Buffer.from(content, "utf8");
  const checksum = crc32(data);

  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4); // version needed to extract
  local.writeUInt32LE(checksum, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(name.length, 26);

  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4); // version made by
  central.writeUInt16LE(20, 6); // version needed to extract
  central.writeUInt32LE(checksum, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(name.length, 28);
  central.writeUInt32LE(0, 42); // offset of the local header

  const centralOffset = local.length + name.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(centralOffset, 16);

  return Buffer.concat([local, name, data, central, name, end]);
}

export interface MotoClientConfig {
  endpoint: string;
  region: string;
  /** moto serves the account these belong to (e.g. credentials from its sts:AssumeRole). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

const roleArns = new Map<string, Promise<string>>();

/**
 * moto's CreateFunction wants a role of the function's own account that trusts Lambda: one per
 * endpoint and credentials (moto's account), made once.
 */
function functionRole(config: MotoClientConfig): Promise<string> {
  const key = `${config.endpoint} ${config.credentials?.accessKeyId ?? ""}`;
  let arn = roleArns.get(key);
  if (!arn) {
    arn = new IAMClient(config)
      .send(
        new CreateRoleCommand({
          RoleName: `lambda-role-${randomBytes(4).toString("hex")}`,
          AssumeRolePolicyDocument: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
            ],
          }),
        }),
      )
      .then((answer) => answer.Role?.Arn ?? "");
    roleArns.set(key, arn);
  }
  return arn;
}

/**
 * Creates a Lambda function in moto (kept, never run: moto invokes functions only with Docker),
 * e.g. a subscription destination (moto's PutSubscriptionFilter accepts only one that exists) or a
 * tagged sample function whose tags and runtime become labels.
 */
export async function createMotoFunction(
  config: MotoClientConfig,
  fn: { name: string; runtime?: Runtime; tags?: Record<string, string> },
): Promise<string> {
  const created = await new LambdaClient(config).send(
    new CreateFunctionCommand({
      FunctionName: fn.name,
      Runtime: fn.runtime ?? "nodejs22.x",
      Role: await functionRole(config),
      Handler: "index.handler",
      Code: { ZipFile: zipOneFile("index.mjs", "export const handler = async () => ({});") },
      ...(fn.tags ? { Tags: fn.tags } : {}),
    }),
  );
  if (!created.FunctionArn) throw new Error(`moto returned no FunctionArn for ${fn.name}`);
  return created.FunctionArn;
}
