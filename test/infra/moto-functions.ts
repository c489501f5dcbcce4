import { crc32 } from "node:zlib";
import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateFunctionCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { awsClientConfig, uniqueName } from "../helpers/aws.ts";

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

let functionRoleArn: Promise<string> | undefined;

/**
 * Creates a function in moto to serve as a subscription destination: moto's PutSubscriptionFilter
 * accepts only a destination that exists, and its CreateFunction wants a role that trusts Lambda.
 */
export async function createDestinationFunction(name: string): Promise<string> {
  functionRoleArn ??= new IAMClient(awsClientConfig())
    .send(
      new CreateRoleCommand({
        RoleName: uniqueName("destination-role"),
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
          ],
        }),
      }),
    )
    .then((answer) => answer.Role?.Arn ?? "");
  const created = await new LambdaClient(awsClientConfig()).send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs22.x",
      Role: await functionRoleArn,
      Handler: "index.handler",
      Code: { ZipFile: zipOneFile("index.mjs", "export const handler = async () => ({});") },
    }),
  );
  if (!created.FunctionArn) throw new Error(`moto returned no FunctionArn for ${name}`);
  return created.FunctionArn;
}
