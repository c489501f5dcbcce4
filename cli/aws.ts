import { CloudWatchLogsClient } from "@aws-sdk/client-cloudwatch-logs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { SFNClient } from "@aws-sdk/client-sfn";

/** Options every command takes; credentials come from the standard AWS chain. */
export interface AwsOptions {
  region?: string;
  profile?: string;
  /** Another endpoint for every AWS API, e.g. moto on 127.0.0.1 (also AWS_ENDPOINT_URL). */
  endpointUrl?: string;
}

export interface AwsClients {
  logs: CloudWatchLogsClient;
  lambda: LambdaClient;
  s3: S3Client;
  sfn: SFNClient;
  region: string;
}

export function createAwsClients(options: AwsOptions): AwsClients {
  // The SDK reads the profile from the environment when it builds its credential chain.
  if (options.profile) process.env.AWS_PROFILE = options.profile;
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "eu-central-1";
  const endpoint = options.endpointUrl ?? process.env.AWS_ENDPOINT_URL;
  const config = { region, ...(endpoint ? { endpoint } : {}) };
  return {
    logs: new CloudWatchLogsClient(config),
    lambda: new LambdaClient(config),
    s3: new S3Client({ ...config, forcePathStyle: Boolean(endpoint) }),
    sfn: new SFNClient(config),
    region,
  };
}
