import * as z from "zod/mini";
import { parseEverySection } from "../config-sections.ts";
import { ConfigError } from "../errors.ts";
import { addIssue } from "../mini-schema.ts";
import { chooseTenant, parseTenantRouting, type TenantChoice, type TenantRouting } from "./tenant-routing.ts";

/**
 * Loki stream labels of a log group: fixed labels (source, log group, account, region, static ones)
 * plus the log group's AWS tags that the allow/deny lists and the prefix let through, sanitised
 * into valid label names and kept within Loki's label count limit.
 */

/** Loki's `max_label_names_per_series` default (limits_config); `time_shard` counts towards it. */
export const LOKI_MAX_LABEL_NAMES = 15;
/** Every stream the shipper writes also carries this label (see timestamps.ts). */
export const TIME_SHARD_LABEL = "time_shard";
export const LOG_STREAM_LABEL = "log_stream";
const VALID_LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Loki's `max_label_value_length` default. */
const MAX_LABEL_VALUE_LENGTH = 2048;

export interface LabelOptions {
  /** Glob patterns (`*` only) on tag keys; a tag becomes a label only if one matches. */
  allow: string[];
  /** Glob patterns on tag keys that never become labels; wins over `allow`. */
  deny: string[];
  /** When set, only tags whose key starts with it are considered, and it is removed from the name. */
  prefix?: string;
  logGroupLabel: boolean;
  accountLabel: boolean;
  regionLabel: boolean;
  /** The log stream name as a label: one stream per Lambda instance, so off by default. */
  logStreamLabel: boolean;
  /** Log stream name and Lambda request id as structured metadata (not labels). */
  structuredMetadata: boolean;
  staticLabels: Record<string, string>;
  /** Label names a stream may carry, including `time_shard`. */
  maxLabelNames: number;
  /** Labels from the Lambda function of `/aws/lambda/<name>` groups: its tags and runtime. */
  functionLabels: boolean;
  /** The tag that chooses a group's Loki tenant, and the tenants it may choose (tenant-routing.ts). */
  tenants: TenantRouting;
}

/** Per-entry choices the delivery applies (the group labels cannot express them). */
export interface EventLabelOptions {
  logStreamLabel: boolean;
  structuredMetadata: boolean;
}

export const DEFAULT_EVENT_LABEL_OPTIONS: EventLabelOptions = {
  logStreamLabel: false,
  structuredMetadata: true,
};

export interface LabelContext {
  accountId?: string;
  region?: string;
}

export interface TagDecision {
  source: TagSource;
  tag: string;
  value: string;
  /** The label name the tag maps to (after prefix removal and sanitising), if it has one. */
  label?: string;
  kept: boolean;
  reason: string;
}

export interface ResolvedLabels {
  labels: Record<string, string>;
  dropped: { key: string; reason: string }[];
  eventLabels: EventLabelOptions;
  /** The Loki tenant the group's events go to (LABEL_TENANT_TAG), and why. */
  tenant: TenantChoice;
}

export interface LabelExplanation extends ResolvedLabels {
  fixed: Record<string, string>;
  tags: TagDecision[];
  /** Where each label of `labels` comes from. */
  sources: Record<string, LabelSource>;
  /** Labels every entry adds on top: always `time_shard`, `log_stream` when asked for. */
  perEntryLabels: string[];
  structuredMetadata: string[];
  warnings: string[];
}

/** A boolean variable: true/false, 1/0, yes/no. */
export const booleanText = z.pipe(
  z.enum(["true", "false", "1", "0", "yes", "no"], { message: "expected true or false" }),
  z.transform((value) => value === "true" || value === "1" || value === "yes"),
);

/** Comma-separated list; "none" is the empty list (an empty variable means "use the default"). */
const listText = z.pipe(
  z.string(),
  z.transform((value) =>
    (value.trim() === "none" ? "" : value)
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  ),
);

const labelEnvSchema = z.object({
  LABEL_TAG_ALLOW: z._default(listText, ["*"]),
  LABEL_TAG_DENY: z._default(listText, ["aws:*"]),
  LABEL_TAG_PREFIX: z.optional(z.string()),
  LABEL_LOG_GROUP: z._default(booleanText, true),
  LABEL_ACCOUNT: z._default(booleanText, true),
  LABEL_REGION: z._default(booleanText, true),
  LABEL_LOG_STREAM: z._default(booleanText, false),
  LABEL_STRUCTURED_METADATA: z._default(booleanText, true),
  LABEL_LAMBDA_FUNCTION: z._default(booleanText, true),
  LABEL_STATIC: z.pipe(
    z._default(z.string(), ""),
    z.transform((value, ctx) => {
      const labels: Record<string, string> = {};
      for (const pair of value
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean)) {
        const separator = pair.indexOf("=");
        const name = pair.slice(0, separator).trim();
        const labelValue = pair.slice(separator + 1).trim();
        if (separator <= 0 || !VALID_LABEL_NAME.test(name) || name.startsWith("__") || labelValue === "") {
          addIssue(
            ctx,
            `expected name=value pairs with names matching [a-zA-Z_][a-zA-Z0-9_]*, got ${JSON.stringify(pair)}`,
          );
          continue;
        }
        labels[name] = labelValue;
      }
      return labels;
    }),
  ),
  LABEL_MAX_COUNT: z._default(
    z.coerce
      .number({ message: "expected a number" })
      .check(
        z.int("expected a whole number"),
        z.minimum(2, "must leave room for source and time_shard (at least 2)"),
      ),
    LOKI_MAX_LABEL_NAMES,
  ),
});

/**
 * Parses the `LABEL_*` environment variables and the tenants a tag may choose
 * (`LOKI_TENANTS_ALLOWED`); throws one ConfigError listing every mistake.
 */
export function parseLabelOptions(env: Record<string, string | undefined>): LabelOptions {
  const { parsed, tenants } = parseEverySection({
    parsed: () => {
      const result = labelEnvSchema.safeParse(emptyToUndefined(env, Object.keys(labelEnvSchema.shape)));
      if (!result.success) throw configErrorFrom(result.error, env);
      return result.data;
    },
    tenants: () => parseTenantRouting(env),
  });
  return {
    allow: parsed.LABEL_TAG_ALLOW,
    deny: parsed.LABEL_TAG_DENY,
    ...(parsed.LABEL_TAG_PREFIX ? { prefix: parsed.LABEL_TAG_PREFIX } : {}),
    logGroupLabel: parsed.LABEL_LOG_GROUP,
    accountLabel: parsed.LABEL_ACCOUNT,
    regionLabel: parsed.LABEL_REGION,
    logStreamLabel: parsed.LABEL_LOG_STREAM,
    structuredMetadata: parsed.LABEL_STRUCTURED_METADATA,
    staticLabels: parsed.LABEL_STATIC,
    maxLabelNames: parsed.LABEL_MAX_COUNT,
    functionLabels: parsed.LABEL_LAMBDA_FUNCTION,
    tenants,
  };
}

/** Default options, as with no `LABEL_*` variable set. */
export function defaultLabelOptions(): LabelOptions {
  return parseLabelOptions({});
}

/**
 * A tag key as a valid Loki label name (`[a-zA-Z_][a-zA-Z0-9_]*`): every other character becomes
 * `_`, and a leading digit gets a `_` in front. An invalid name would make Loki refuse the whole
 * push request ("couldn't parse labels").
 */
export function sanitizeLabelName(key: string): string {
  const replaced = key.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[0-9]/.test(replaced) ? `_${replaced}` : replaced;
}

/** Where a label comes from, in the order of precedence after the fixed labels. */
export type TagSource = "group tag" | "function tag" | "function configuration";
export type LabelSource = "fixed" | TagSource;

/** What a log group's labels are made of, besides the fixed ones. */
export interface LabelSources {
  /** The log group's AWS tags. */
  groupTags: Record<string, string>;
  /** The tags of the Lambda function behind `/aws/lambda/<name>` (function-labels.ts). */
  functionTags?: Record<string, string>;
  /** Labels derived from the function's configuration (`runtime`). */
  functionConfig?: Record<string, string>;
}

export function resolveGroupLabels(
  logGroup: string,
  sources: LabelSources,
  options: LabelOptions,
  context: LabelContext,
): ResolvedLabels {
  const { labels, dropped, eventLabels, tenant } = explainLabels(logGroup, sources, options, context);
  return { labels, dropped, eventLabels, tenant };
}

/**
 * What `resolveGroupLabels` decides, with the source of every label and the reason for every tag:
 * what the CLI's `labels` command prints. When two sources give the same label, the log group's
 * tags win over the function's tags, which win over the labels derived from its configuration.
 */
export function explainLabels(
  logGroup: string,
  sources: LabelSources,
  options: LabelOptions,
  context: LabelContext,
): LabelExplanation {
  const fixed = fixedLabels(logGroup, options, context);
  const reserved = new Set([TIME_SHARD_LABEL, ...Object.keys(fixed)]);
  if (options.logStreamLabel) reserved.add(LOG_STREAM_LABEL);

  const ordered: [TagSource, Record<string, string>][] = [["group tag", sources.groupTags]];
  if (options.functionLabels) {
    ordered.push(["function tag", sources.functionTags ?? {}]);
    ordered.push(["function configuration", sources.functionConfig ?? {}]);
  }
  const decisions: TagDecision[] = [];
  const candidates = new Map<string, TagDecision>();
  for (const [source, tags] of ordered) {
    for (const key of Object.keys(tags).sort()) {
      const decision = decideTag(source, key, tags[key] ?? "", options, reserved, candidates);
      decisions.push(decision);
      if (decision.kept && decision.label) candidates.set(decision.label, decision);
    }
  }
  const { labels, warnings } = applyLabelLimit(logGroup, fixed, candidates, options);
  const labelSources: Record<string, LabelSource> = {};
  for (const name of Object.keys(labels))
    labelSources[name] = name in fixed ? "fixed" : (candidates.get(name) as TagDecision).source;
  return {
    labels,
    dropped: decisions.filter((decision) => !decision.kept).map(({ tag, reason }) => ({ key: tag, reason })),
    eventLabels: { logStreamLabel: options.logStreamLabel, structuredMetadata: options.structuredMetadata },
    tenant: chooseTenant(options.tenants, {
      group: sources.groupTags,
      ...(options.functionLabels ? { function: sources.functionTags ?? {} } : {}),
    }),
    fixed,
    tags: decisions,
    sources: labelSources,
    perEntryLabels: perEntryLabels(options),
    structuredMetadata: options.structuredMetadata
      ? [...(options.logStreamLabel ? [] : [LOG_STREAM_LABEL]), "request_id"]
      : [],
    warnings,
  };
}

function fixedLabels(logGroup: string, options: LabelOptions, context: LabelContext): Record<string, string> {
  const fixed: Record<string, string> = { source: "cloudwatch" };
  if (options.logGroupLabel) fixed.log_group = logGroup;
  if (options.accountLabel && context.accountId) fixed.account = context.accountId;
  if (options.regionLabel && context.region) fixed.region = context.region;
  for (const [name, value] of Object.entries(options.staticLabels)) fixed[name] ??= value;
  return fixed;
}

function perEntryLabels(options: LabelOptions): string[] {
  return [TIME_SHARD_LABEL, ...(options.logStreamLabel ? [LOG_STREAM_LABEL] : [])];
}

/**
 * Whether one tag (or derived label) can become a label, and why. The prefix selects and renames
 * tags only: a label derived from the function's configuration already has its name.
 */
function decideTag(
  source: TagSource,
  key: string,
  value: string,
  options: LabelOptions,
  reserved: ReadonlySet<string>,
  candidates: ReadonlyMap<string, TagDecision>,
): TagDecision {
  const decide = (kept: boolean, reason: string, label?: string): TagDecision => ({
    source,
    tag: key,
    value,
    kept,
    reason,
    ...(label ? { label } : {}),
  });
  if (source !== "function configuration" && key === options.tenants.tagKey)
    return decide(false, "chooses the Loki tenant (LABEL_TENANT_TAG): never a label");
  const prefix = source === "function configuration" ? undefined : options.prefix;
  if (prefix !== undefined && !key.startsWith(prefix))
    return decide(false, `key does not start with the prefix ${JSON.stringify(prefix)}`);
  const denied = options.deny.find((pattern) => globMatches(pattern, key));
  if (denied) return decide(false, `denied by ${JSON.stringify(denied)}`);
  if (!options.allow.some((pattern) => globMatches(pattern, key)))
    return decide(false, "not in the allow list");
  const label = sanitizeLabelName(prefix ? key.slice(prefix.length) : key);
  if (label === "" || label === "_")
    return decide(false, "empty label name after prefix removal and sanitising");
  if (label.startsWith("__"))
    return decide(false, `label name ${label} starts with "__", which Loki reserves`, label);
  if (value === "") return decide(false, "empty value (Loki drops empty labels)", label);
  if (value.length > MAX_LABEL_VALUE_LENGTH)
    return decide(
      false,
      `value longer than Loki's max_label_value_length (${MAX_LABEL_VALUE_LENGTH})`,
      label,
    );
  if (reserved.has(label)) return decide(false, `label ${label} is set by the shipper itself`, label);
  const earlier = candidates.get(label);
  if (earlier) {
    const from =
      earlier.source === source
        ? `tag ${JSON.stringify(earlier.tag)}`
        : `the ${earlier.source} ${JSON.stringify(earlier.tag)}`;
    return decide(false, `label ${label} already comes from ${from}`, label);
  }
  return decide(true, label === key ? "allowed" : `allowed, renamed to ${label}`, label);
}

/** Deterministic limit: fixed labels first, then tag labels by name; the rest is dropped. */
function applyLabelLimit(
  logGroup: string,
  fixed: Record<string, string>,
  candidates: ReadonlyMap<string, TagDecision>,
  options: LabelOptions,
): { labels: Record<string, string>; warnings: string[] } {
  const room = options.maxLabelNames - perEntryLabels(options).length;
  const warnings: string[] = [];
  const labels: Record<string, string> = {};
  const fixedNames = Object.keys(fixed);
  for (const name of fixedNames.slice(0, Math.max(room, 0))) labels[name] = fixed[name] as string;
  if (fixedNames.length > room) {
    warnings.push(`fixed and static labels exceed the limit of ${options.maxLabelNames} label names`);
  }
  let left = room - Object.keys(labels).length;
  const overLimit: string[] = [];
  for (const label of [...candidates.keys()].sort()) {
    const decision = candidates.get(label) as TagDecision;
    if (left > 0) {
      labels[label] = decision.value;
      left -= 1;
    } else {
      decision.kept = false;
      decision.reason = `over Loki's limit of ${options.maxLabelNames} label names per stream (tags are kept in label name order)`;
      overLimit.push(decision.tag);
    }
  }
  if (overLimit.length > 0) {
    warnings.push(
      `${overLimit.length} tag(s) of ${logGroup} dropped over the label limit: ${overLimit.join(", ")}`,
    );
  }
  return { labels, warnings };
}

function globMatches(pattern: string, key: string): boolean {
  if (!pattern.includes("*")) return pattern === key;
  const source = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${source}$`).test(key);
}

/** Treats variables set to an empty string as unset (CloudFormation cannot omit a variable easily). */
export function emptyToUndefined(
  env: Record<string, string | undefined>,
  names: string[],
): Record<string, string | undefined> {
  const picked: Record<string, string | undefined> = {};
  for (const name of names) {
    const value = env[name];
    picked[name] = value === undefined || value.trim() === "" ? undefined : value;
  }
  return picked;
}

/** One ConfigError whose message has a line per mistake, naming the variable and its value. */
export function configErrorFrom(
  error: z.core.$ZodError,
  env: Record<string, string | undefined>,
): ConfigError {
  const lines = error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "configuration");
    const value = env[name];
    return `${name}: ${issue.message}${value === undefined ? " (not set)" : ` (got ${JSON.stringify(value)})`}`;
  });
  return new ConfigError(lines);
}
