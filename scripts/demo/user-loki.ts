import { CreateSecretCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { ConfigError } from "../../functions/core/errors.ts";
import { authorizationHeader, type LokiTarget } from "../../functions/core/loki/loki-target.ts";

/**
 * The demo against a Loki the user already has (`--loki-url`, Grafana Cloud included): the
 * credentials come from environment variables only (arguments show in `ps` and shell history),
 * and are handed to the shipper the way a deployment does, as a Secrets Manager secret (in moto).
 */

export type DemoCredentials =
  | { kind: "basic"; username: string; password: string }
  | { kind: "bearer"; token: string };

export function credentialsFromEnv(env: Record<string, string | undefined>): DemoCredentials | undefined {
  const { LOKI_USERNAME: username, LOKI_PASSWORD: password, LOKI_BEARER_TOKEN: token } = env;
  if (token && (username || password)) {
    throw new ConfigError("Set either LOKI_BEARER_TOKEN or LOKI_USERNAME and LOKI_PASSWORD, not both");
  }
  if (token) return { kind: "bearer", token };
  if (!username && !password) return undefined;
  if (!username || !password) {
    throw new ConfigError("Basic auth needs both LOKI_USERNAME and LOKI_PASSWORD in the environment");
  }
  return { kind: "basic", username, password };
}

/** Stores the credentials as a secret; returns the shipper's `LOKI_AUTH` and `LOKI_SECRET_ARN`. */
export async function storeCredentials(
  secrets: SecretsManagerClient,
  credentials: DemoCredentials,
): Promise<Record<string, string>> {
  const secretString =
    credentials.kind === "basic"
      ? JSON.stringify({ username: credentials.username, password: credentials.password })
      : JSON.stringify({ token: credentials.token });
  const created = await secrets.send(
    new CreateSecretCommand({ Name: `loki-shipper-demo/loki-${Date.now()}`, SecretString: secretString }),
  );
  if (!created.ARN) throw new Error("Secrets Manager created the demo's secret without an ARN");
  return { LOKI_AUTH: credentials.kind, LOKI_SECRET_ARN: created.ARN };
}

/** Headers for the demo's own requests (the probe and the query), built by the shipper's own code. */
export async function lokiHeaders(target: LokiTarget): Promise<Record<string, string>> {
  const authorization = await authorizationHeader(target);
  return {
    ...(target.tenant ? { "X-Scope-OrgID": target.tenant } : {}),
    ...(authorization ? { Authorization: authorization } : {}),
  };
}

/**
 * One line saying why the Loki will not take the demo's pushes, or undefined when it will. The
 * probe is an empty push: Loki checks the tenant and the credentials first, then answers 422 for
 * the empty stream list (204 behind some gateways), and stores nothing.
 */
export async function lokiRefusal(
  target: LokiTarget,
  headers: Record<string, string>,
): Promise<string | undefined> {
  let response: Response;
  try {
    response = await fetch(target.pushUrl, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ streams: [] }),
      signal: AbortSignal.timeout(target.requestTimeoutMs),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    return `Loki at ${target.pushUrl} cannot be reached (${reason}): check --loki-url and the network`;
  }
  if (response.ok || response.status === 422) return undefined;
  const body = (await response.text()).trim().split("\n")[0]?.slice(0, 200) ?? "";
  const hint =
    response.status === 401 || response.status === 403
      ? ": check LOKI_USERNAME and LOKI_PASSWORD (or LOKI_BEARER_TOKEN) and --tenant"
      : ": check --loki-url";
  return `Loki at ${target.pushUrl} refused the demo (HTTP ${response.status} ${body})${hint}`;
}
