import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SSMClient } from "@aws-sdk/client-ssm";
import * as z from "zod/mini";
import { deferredClient } from "../deferred-client.ts";
import { ConfigError } from "../errors.ts";
import { booleanText, configErrorFrom, emptyToUndefined } from "../labels/labels.ts";
import { addIssue } from "../mini-schema.ts";
import { createGotLokiPushClient, type LokiLimits, type LokiPushClient } from "./loki-client.ts";
import type { PushFormat } from "./loki-push.ts";
import {
  clearSecretCache,
  describeSecretSource,
  readSecret,
  type SecretClients,
  type SecretSource,
} from "./secrets.ts";

/** Where and how to push: parsed once at cold start from the `LOKI_*` environment variables. */
export interface LokiTarget {
  /** Full push URL (`.../loki/api/v1/push`). */
  pushUrl: string;
  tenant?: string;
  auth: LokiAuth;
  format: PushFormat;
  limits: LokiLimits;
  /** Decoded bytes per push; Loki fails pushes over 4 MiB with a 500, so stay well below. */
  maxBatchBytes: number;
  maxBatchEntries: number;
  /** Streams pushed in parallel; every push carries one stream (see splitIntoRequests). */
  pushConcurrency: number;
  requestTimeoutMs: number;
  /** The tenant's `shard_streams` settings (Loki's defaults: on, 1536KB). */
  shardStreams: { enabled: boolean; desiredRateBytes: number };
}

export type LokiAuth =
  | { kind: "none" }
  | { kind: "basic"; username?: string; secret: SecretSource }
  | { kind: "bearer"; secret: SecretSource };

const UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const UNITS_BYTES: Record<string, number> = { b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2 };

/** Durations as Loki writes them: "168h", "10m", "1w", "30s", "500ms" (also combined: "1h30m"). */
export function parseDuration(text: string): number | undefined {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join("") !== text.trim()) return undefined;
  return parts.reduce((total, part) => total + Number(part[1]) * (UNITS_MS[part[2] as string] as number), 0);
}

/** Sizes as Loki writes them: "256KB" (KiB, as Loki's flag parser reads it), "1MB", "262144". */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? "").toLowerCase() || "b";
  const factor = UNITS_BYTES[unit];
  return factor === undefined ? undefined : Math.floor(Number(match[1]) * factor);
}

/** A duration variable in milliseconds; `problem` is the message for text that is not a duration. */
export const durationText = (problem: string) =>
  z.pipe(
    z.string(),
    z.transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) addIssue(ctx, problem);
      return ms ?? 0;
    }),
  );

const duration = (what: string) => durationText(`expected a ${what} duration such as 168h, 10m or 30s`);

const byteSize = (min: number, max: number) =>
  z.pipe(
    z.string(),
    z.transform((value, ctx) => {
      const bytes = parseByteSize(value);
      if (bytes === undefined) addIssue(ctx, "expected a size such as 256KB, 1MB or 262144");
      else if (bytes < min || bytes > max) addIssue(ctx, `must be between ${min} and ${max} bytes`);
      return bytes ?? 0;
    }),
  );

/** A whole number from `min` to `max`, with full zod's messages for `.int().min().max()`. */
function wholeNumber(min: number, max: number) {
  return z.coerce.number({ message: "expected a number" }).check(z.int(), z.minimum(min), z.maximum(max));
}

const targetSchema = z.object({
  LOKI_URL: z.url({
    protocol: /^https?$/,
    message: "expected an http(s) URL such as https://loki.example.com",
  }),
  LOKI_TENANT: z.optional(z.string()),
  LOKI_AUTH: z._default(
    z.enum(["none", "basic", "bearer"], { message: "expected none, basic or bearer" }),
    "none",
  ),
  LOKI_USERNAME: z.optional(z.string()),
  LOKI_SECRET_ARN: z.optional(z.string()),
  LOKI_SECRET_PARAMETER: z.optional(z.string()),
  LOKI_PUSH_FORMAT: z._default(
    z.enum(["protobuf", "json"], { message: "expected protobuf or json" }),
    "protobuf",
  ),
  LOKI_REJECT_OLD_SAMPLES_MAX_AGE: z._default(duration("positive"), 168 * 3_600_000),
  LOKI_CREATION_GRACE_PERIOD: z._default(duration("positive"), 10 * 60_000),
  LOKI_MAX_LINE_SIZE: z._default(byteSize(1, 64 * 1024 * 1024), 256 * 1024),
  LOKI_BATCH_MAX_BYTES: z._default(byteSize(1024, 3 * 1024 * 1024), 1024 * 1024),
  LOKI_BATCH_MAX_ENTRIES: z._default(wholeNumber(1, 100_000), 10_000),
  LOKI_PUSH_CONCURRENCY: z._default(wholeNumber(1, 32), 4),
  LOKI_TIMEOUT: z._default(duration("request timeout"), 10_000),
  LOKI_SHARD_STREAMS_ENABLED: z._default(booleanText, true),
  LOKI_SHARD_STREAMS_DESIRED_RATE: z._default(byteSize(1024, 1024 ** 3), 1536 * 1024),
});

/** Checks across variables; run on the raw values so they are reported along with the others. */
function crossVariableProblems(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const auth = env.LOKI_AUTH;
  if ((auth === "basic" || auth === "bearer") && !env.LOKI_SECRET_ARN && !env.LOKI_SECRET_PARAMETER) {
    problems.push(
      `LOKI_AUTH: ${auth} auth needs the credentials in LOKI_SECRET_ARN (Secrets Manager) or LOKI_SECRET_PARAMETER (SSM)`,
    );
  }
  if (env.LOKI_SECRET_ARN && env.LOKI_SECRET_PARAMETER) {
    problems.push("LOKI_SECRET_PARAMETER: set only one of LOKI_SECRET_ARN and LOKI_SECRET_PARAMETER");
  }
  return problems;
}

export function parseLokiTarget(env: Record<string, string | undefined>): LokiTarget {
  const names = Object.keys(targetSchema.shape);
  const values = emptyToUndefined(env, names);
  const result = targetSchema.safeParse(values);
  const crossProblems = crossVariableProblems(values);
  if (!result.success || crossProblems.length > 0) {
    const schemaProblems = result.success ? [] : configErrorFrom(result.error, env).problems;
    throw new ConfigError([...schemaProblems, ...crossProblems]);
  }
  const parsed = result.data;
  const url = new URL(parsed.LOKI_URL);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/loki/api/v1/push";
  const secret: SecretSource | undefined = parsed.LOKI_SECRET_ARN
    ? { kind: "secretsManager", secretId: parsed.LOKI_SECRET_ARN }
    : parsed.LOKI_SECRET_PARAMETER
      ? { kind: "ssm", parameterName: parsed.LOKI_SECRET_PARAMETER }
      : undefined;
  let auth: LokiAuth = { kind: "none" };
  if (parsed.LOKI_AUTH === "basic" && secret) {
    auth = { kind: "basic", secret, ...(parsed.LOKI_USERNAME ? { username: parsed.LOKI_USERNAME } : {}) };
  } else if (parsed.LOKI_AUTH === "bearer" && secret) {
    auth = { kind: "bearer", secret };
  }
  return {
    pushUrl: url.toString(),
    ...(parsed.LOKI_TENANT ? { tenant: parsed.LOKI_TENANT } : {}),
    auth,
    format: parsed.LOKI_PUSH_FORMAT,
    limits: {
      rejectOldSamplesMaxAgeMs: parsed.LOKI_REJECT_OLD_SAMPLES_MAX_AGE,
      creationGracePeriodMs: parsed.LOKI_CREATION_GRACE_PERIOD,
      maxLineSize: parsed.LOKI_MAX_LINE_SIZE,
    },
    maxBatchBytes: parsed.LOKI_BATCH_MAX_BYTES,
    maxBatchEntries: parsed.LOKI_BATCH_MAX_ENTRIES,
    pushConcurrency: parsed.LOKI_PUSH_CONCURRENCY,
    requestTimeoutMs: parsed.LOKI_TIMEOUT,
    shardStreams: {
      enabled: parsed.LOKI_SHARD_STREAMS_ENABLED,
      desiredRateBytes: parsed.LOKI_SHARD_STREAMS_DESIRED_RATE,
    },
  };
}

// Loaded when a secret is first read: most targets have none.
const secretsManagerClient = deferredClient<SecretsManagerClient>(
  async () => new (await import("@aws-sdk/client-secrets-manager")).SecretsManagerClient({}),
);
const ssmClient = deferredClient<SSMClient>(
  async () => new (await import("@aws-sdk/client-ssm")).SSMClient({}),
);
const defaultSecretClients: SecretClients = {
  secretsManager: () => secretsManagerClient,
  ssm: () => ssmClient,
};

/** The `Authorization` header value for the target, reading the secret (cached) when needed. */
export async function authorizationHeader(
  target: LokiTarget,
  clients?: SecretClients,
): Promise<string | undefined> {
  const auth = target.auth;
  if (auth.kind === "none") return undefined;
  const secretText = await readSecret(auth.secret, clients ?? defaultSecretClients);
  const structured = parseSecretJson(secretText);
  if (auth.kind === "bearer") {
    const token =
      typeof structured?.token === "string" ? structured.token : structured ? undefined : secretText.trim();
    if (!token)
      throw new ConfigError(
        `${describeSecretSource(auth.secret)} holds JSON without a "token" field for bearer auth`,
      );
    return `Bearer ${token}`;
  }
  let username = auth.username;
  let password: string | undefined;
  if (structured) {
    username = typeof structured.username === "string" ? structured.username : username;
    password = typeof structured.password === "string" ? structured.password : undefined;
  } else if (username) {
    password = secretText;
  } else {
    const separator = secretText.indexOf(":");
    if (separator > 0) {
      username = secretText.slice(0, separator);
      password = secretText.slice(separator + 1);
    }
  }
  if (!username || password === undefined) {
    throw new ConfigError(
      `${describeSecretSource(auth.secret)} must hold {"username","password"} JSON, "user:password", or the password with LOKI_USERNAME set`,
    );
  }
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

function parseSecretJson(text: string): Record<string, unknown> | undefined {
  if (!text.trimStart().startsWith("{")) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export async function createLokiPushClient(
  target: LokiTarget,
  deps: { secretClients?: SecretClients } = {},
): Promise<LokiPushClient> {
  const authorization = await authorizationHeader(target, deps.secretClients);
  const client = createGotLokiPushClient({
    pushUrl: target.pushUrl,
    ...(target.tenant ? { tenant: target.tenant } : {}),
    ...(authorization ? { authorization } : {}),
    format: target.format,
    limits: target.limits,
    maxBatchBytes: target.maxBatchBytes,
    maxBatchEntries: target.maxBatchEntries,
    pushConcurrency: target.pushConcurrency,
    requestTimeoutMs: target.requestTimeoutMs,
    lookUpStored: target.shardStreams.enabled,
  });
  if (target.auth.kind === "none") return client;
  return {
    ...client,
    async push(streams, options) {
      const attempt = await client.push(streams, options);
      // Credentials may have been rotated: read the secret again on the next invocation.
      if (attempt.status === 401 || attempt.status === 403) clearSecretCache();
      return attempt;
    },
  };
}
