import { z } from "zod";

/**
 * The app's configuration, from CDK context (cdk.json or `-c key=value`) or, winning over it, the
 * environment variable named next to each key. Parsed once; every mistake is reported in one
 * error that names the key, the variable and the value received.
 */
const SETTINGS = {
  region: "LOKI_SHIPPER_REGION",
  account: "CDK_DEFAULT_ACCOUNT",
  stackPrefix: "LOKI_SHIPPER_STACK_PREFIX",
  lokiUrl: "LOKI_URL",
  lokiTenant: "LOKI_TENANT",
  lokiAuth: "LOKI_AUTH",
  lokiSecretArn: "LOKI_SECRET_ARN",
  lokiPushFormat: "LOKI_PUSH_FORMAT",
  subscribePrefixes: "SUBSCRIBE_PREFIXES",
  subscribeTagSelectors: "SUBSCRIBE_TAG_SELECTORS",
  subscribeNewLogGroups: "SUBSCRIBE_NEW_LOG_GROUPS",
  accountSubscriptionPolicy: "ACCOUNT_SUBSCRIPTION_POLICY",
  shipperReservedConcurrency: "SHIPPER_RESERVED_CONCURRENCY",
  functionLabels: "FUNCTION_LABELS",
  tenantTag: "LABEL_TENANT_TAG",
  allowedTenants: "LOKI_TENANTS_ALLOWED",
  spillDrainMinutes: "SPILL_DRAIN_MINUTES",
  logRetentionDays: "LOG_RETENTION_DAYS",
  deployDemo: "DEPLOY_DEMO",
  demoOwner: "DEMO_OWNER",
  demoSystemUnderTest: "DEMO_SYSTEM_UNDER_TEST",
} as const;

type SettingKey = keyof typeof SETTINGS;

// The retention values CloudWatch Logs accepts.
// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

const booleanSetting = z
  .union([z.boolean(), z.enum(["true", "false"], { message: "expected true or false" })])
  .transform((value) => value === true || value === "true");

/** A list given as an array in cdk.json, or as text split on `separator` (env or `-c`). */
const listSetting = (separator: string) =>
  z
    .union([z.array(z.string()), z.string()])
    .transform((value) =>
      (Array.isArray(value) ? value : value.split(separator)).map((item) => item.trim()).filter(Boolean),
    );

const wholeNumber = (min: number) =>
  z.coerce
    .number({ message: "expected a number" })
    .int("expected a whole number")
    .min(min, `must be at least ${min}`);

const configSchema = z.object({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "expected an AWS region such as eu-central-1"),
  account: z
    .string()
    .regex(/^\d{12}$/, "expected a 12-digit AWS account id")
    .optional(),
  stackPrefix: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,60}$/, "expected letters, digits and hyphens, starting with a letter")
    .default("LokiShipper"),
  lokiUrl: z.url({
    protocol: /^https?$/,
    message: "expected an http(s) URL such as https://loki.example.com",
  }),
  lokiTenant: z.string().min(1).optional(),
  lokiAuth: z.enum(["none", "basic", "bearer"]).optional(),
  lokiSecretArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:secretsmanager:/, "expected a Secrets Manager secret ARN")
    .optional(),
  lokiPushFormat: z.enum(["protobuf", "json"]).default("protobuf"),
  subscribePrefixes: listSetting(",").default([]),
  subscribeTagSelectors: listSetting(";").default([]),
  subscribeNewLogGroups: booleanSetting.default(true),
  accountSubscriptionPolicy: booleanSetting.default(false),
  shipperReservedConcurrency: wholeNumber(1).optional(),
  /** Labels from the Lambda function of `/aws/lambda/<name>` groups (its tags and runtime). */
  functionLabels: booleanSetting.default(true),
  /** The tag that chooses a log group's Loki tenant, among `allowedTenants` (off by default). */
  tenantTag: z.string().min(1).optional(),
  /**
   * Tenants the tag may choose: names and `/regex/` patterns, as a list in cdk.json or as the
   * comma-separated text the functions read (a pattern may hold commas).
   */
  allowedTenants: z
    .union([z.array(z.string()), z.string()])
    .transform((value) => (Array.isArray(value) ? value : [value]))
    .optional(),
  spillDrainMinutes: wholeNumber(0).default(5),
  logRetentionDays: wholeNumber(1)
    .refine((days) => RETENTION_DAYS.includes(days), `must be one of ${RETENTION_DAYS.join(", ")}`)
    .default(30),
  deployDemo: booleanSetting.default(true),
  demoOwner: z.string().min(1).default("platform-team"),
  demoSystemUnderTest: z.string().min(1).default("loki-shipper-demo"),
});

/** The app's configuration is missing a value or has a wrong one; the message lists each. */
export class InfraConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InfraConfigError";
  }
}

export type AppConfig = z.infer<typeof configSchema>;

/** Reads the configuration; `context` is CDK's tryGetContext. */
export function loadConfig(
  context: (key: string) => unknown,
  env: Record<string, string | undefined> = process.env,
): AppConfig {
  const raw: Partial<Record<SettingKey, unknown>> = {};
  for (const [key, variable] of Object.entries(SETTINGS) as [SettingKey, string][]) {
    const value = env[variable] ?? context(key);
    if (value !== undefined && value !== "") raw[key] = value;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0]) as SettingKey;
      const received = raw[key] === undefined ? "nothing" : JSON.stringify(raw[key]);
      return `${key} (context) / ${SETTINGS[key]} (environment): ${issue.message}. Received: ${received}`;
    });
    throw new InfraConfigError(`Invalid loki-shipper configuration:\n  ${problems.join("\n  ")}`);
  }
  return parsed.data;
}
