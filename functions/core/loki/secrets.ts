// Types only: the SDK package of the configured source loads when the secret is first read.
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { ConfigError } from "../errors.ts";

/**
 * Loki credentials from Secrets Manager or SSM Parameter Store (SecureString), cached per warm
 * container so that a busy shipper does not call the API for every batch, and re-read after the
 * TTL so that a rotated secret is picked up. Secret values are never logged or put in messages.
 */

export type SecretSource =
  | { kind: "secretsManager"; secretId: string }
  | { kind: "ssm"; parameterName: string };

export interface SecretClients {
  secretsManager?: () => SecretsManagerClient;
  ssm?: () => SSMClient;
}

interface CachedSecret {
  value: string;
  expiresAt: number;
}

const DEFAULT_SECRET_TTL_MS = 5 * 60_000;
const containerSecrets = new Map<string, CachedSecret>();

export function describeSecretSource(source: SecretSource): string {
  return source.kind === "secretsManager"
    ? `secret ${source.secretId}`
    : `SSM parameter ${source.parameterName}`;
}

export async function readSecret(
  source: SecretSource,
  clients: SecretClients,
  options: { ttlMs?: number; now?: () => number } = {},
): Promise<string> {
  const now = options.now ?? Date.now;
  const cacheKey = `${source.kind}:${source.kind === "secretsManager" ? source.secretId : source.parameterName}`;
  const cached = containerSecrets.get(cacheKey);
  if (cached && cached.expiresAt > now()) return cached.value;
  let value: string | undefined;
  try {
    if (source.kind === "secretsManager") {
      if (!clients.secretsManager) throw new ConfigError("no Secrets Manager client was given");
      const { GetSecretValueCommand } = await import("@aws-sdk/client-secrets-manager");
      const response = await clients
        .secretsManager()
        .send(new GetSecretValueCommand({ SecretId: source.secretId }));
      value = response.SecretString;
    } else {
      if (!clients.ssm) throw new ConfigError("no SSM client was given");
      const { GetParameterCommand } = await import("@aws-sdk/client-ssm");
      const response = await clients
        .ssm()
        .send(new GetParameterCommand({ Name: source.parameterName, WithDecryption: true }));
      value = response.Parameter?.Value;
    }
  } catch (error) {
    if (cached) return cached.value;
    throw new ConfigError(
      `Could not read the Loki credentials from ${describeSecretSource(source)}: ${(error as Error).name}`,
      { cause: error },
    );
  }
  if (value === undefined || value === "") {
    throw new ConfigError(`${describeSecretSource(source)} has no string value for the Loki credentials`);
  }
  containerSecrets.set(cacheKey, { value, expiresAt: now() + (options.ttlMs ?? DEFAULT_SECRET_TTL_MS) });
  return value;
}

/** Forgets cached secrets (tests, or after Loki answered 401 to force a re-read). */
export function clearSecretCache(): void {
  containerSecrets.clear();
}
