import type { RE2JS } from "re2js";
import { ConfigError } from "../errors.ts";
import { compileRe2 } from "../re2-pattern.ts";

/**
 * A Loki tenant per log group, for a multi-tenant Loki: a tag (`LABEL_TENANT_TAG`, off by default)
 * on the log group or, by the same precedence as the labels, on its Lambda function names the
 * tenant (`X-Scope-OrgID`) the group's events go to. Only tenants of the allow list
 * (`LOKI_TENANTS_ALLOWED`) are ever used: whoever may tag a log group or a function chooses among
 * them and no others. A group that names another tenant has its events kept in `rejected/` with
 * the reason; they are never sent to a different tenant, the default one included.
 */
export interface TenantRouting {
  /** The tag key that chooses the tenant; undefined: routing is off, every event goes to LOKI_TENANT. */
  tagKey?: string;
  /** The allow list as written, for messages. */
  allowedText: string;
  /** Exact tenant names. */
  names: ReadonlySet<string>;
  /** RE2 patterns (written `/.../`), each matching a whole tenant name. */
  patterns: readonly RE2JS[];
}

/** Where a group's tenant comes from, in the order of precedence. */
export type TenantSource = "group tag" | "function tag";

/** The tenant a group's events go to, and why. `tenant` is undefined for the default one. */
export type TenantChoice =
  | { kind: "default" }
  | { kind: "tag"; tenant: string; source: TenantSource }
  | { kind: "refused"; tenant: string; source: TenantSource; reason: string };

export const NO_TENANT_ROUTING: TenantRouting = { allowedText: "", names: new Set(), patterns: [] };

/**
 * Loki's tenant ID rule (pkg/util/validation, "Tenant IDs"): up to 150 of these characters, and not
 * `.` or `..`. A `|` would make a push name several tenants at once.
 */
const TENANT_ID = /^[a-zA-Z0-9!_.*'()-]{1,150}$/;

/** `LABEL_TENANT_TAG` and `LOKI_TENANTS_ALLOWED`; throws one ConfigError naming every mistake. */
export function parseTenantRouting(env: Record<string, string | undefined>): TenantRouting {
  const tagKey = env.LABEL_TENANT_TAG?.trim() || undefined;
  const allowedText = env.LOKI_TENANTS_ALLOWED?.trim() ?? "";
  const problems: string[] = [];
  const names = new Set<string>();
  const patterns: RE2JS[] = [];
  for (const item of allowListItems(allowedText)) {
    if (item.length > 2 && item.startsWith("/") && item.endsWith("/")) {
      const pattern = compileRe2(item.slice(1, -1), `LOKI_TENANTS_ALLOWED: ${item}`, (text) =>
        problems.push(text),
      );
      if (pattern) patterns.push(pattern);
    } else if (!isTenantId(item)) {
      problems.push(
        `LOKI_TENANTS_ALLOWED: ${JSON.stringify(item)} is not a valid Loki tenant ID (up to 150 of a-z A-Z 0-9 ! - _ . * ' ( ), not "." or ".."); write a pattern as /regex/`,
      );
    } else names.add(item);
  }
  if (tagKey && names.size === 0 && patterns.length === 0 && problems.length === 0) {
    // Refused rather than "allow everything": a tag would otherwise let anyone who may tag a log
    // group write into any tenant of the Loki.
    problems.push(
      `LOKI_TENANTS_ALLOWED: LABEL_TENANT_TAG=${tagKey} routes log groups to the tenant their tag names, which needs the list of tenants they may choose (e.g. "team-a,team-b,/^shared-.*$/") (not set)`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...(tagKey ? { tagKey } : {}), allowedText, names, patterns };
}

/**
 * The comma-separated items of the allow list; a `/.../` pattern keeps its own commas
 * (`/^team-[a-z]{2,8}$/` is one item).
 */
function allowListItems(text: string): string[] {
  const items: string[] = [];
  for (const part of text.split(",")) {
    const open = items.at(-1);
    if (open?.startsWith("/") && (open.length < 2 || !open.endsWith("/")))
      items[items.length - 1] = `${open},${part}`.trimEnd();
    else items.push(part.trim());
  }
  return items.filter((item) => item !== "");
}

function isTenantId(tenant: string): boolean {
  return TENANT_ID.test(tenant) && tenant !== "." && tenant !== "..";
}

/**
 * Why events may not go to `tenant` (a tag-chosen tenant, at shipping and again at replay time),
 * with what to do; undefined when the allow list has it.
 */
export function tenantProblem(tenant: string, routing: TenantRouting): string | undefined {
  if (!isTenantId(tenant)) {
    return `tenant ${JSON.stringify(tenant)} is not a valid Loki tenant ID: fix the ${routing.tagKey ?? "tenant"} tag, then replay rejected/ (loki-shipper replay --source rejected)`;
  }
  if (routing.names.has(tenant) || routing.patterns.some((pattern) => pattern.matches(tenant)))
    return undefined;
  const list = routing.allowedText
    ? `LOKI_TENANTS_ALLOWED (${routing.allowedText})`
    : "LOKI_TENANTS_ALLOWED (empty)";
  return `tenant ${JSON.stringify(tenant)} is not in ${list}; its events are kept in rejected/ and never sent to another tenant: add the tenant to LOKI_TENANTS_ALLOWED or fix the ${routing.tagKey ?? "tenant"} tag, then replay rejected/ (loki-shipper replay --source rejected)`;
}

/**
 * The tenant of a group from its tags and its function's (group tags win). Without a tenant tag
 * (or with an empty value) the group uses the default tenant (LOKI_TENANT).
 */
export function chooseTenant(
  routing: TenantRouting,
  tags: { group: Record<string, string>; function?: Record<string, string> },
): TenantChoice {
  const { tagKey } = routing;
  if (!tagKey) return { kind: "default" };
  const ordered: [TenantSource, Record<string, string> | undefined][] = [
    ["group tag", tags.group],
    ["function tag", tags.function],
  ];
  for (const [source, sourceTags] of ordered) {
    const tenant = sourceTags?.[tagKey];
    // An empty value names no tenant: it counts as no tag (removing the tag gives the same).
    if (tenant === undefined || tenant === "") continue;
    const reason = tenantProblem(tenant, routing);
    return reason ? { kind: "refused", tenant, source, reason } : { kind: "tag", tenant, source };
  }
  return { kind: "default" };
}

/** The tenant a delivery pushes to for a choice: undefined is the default tenant. */
export function chosenTenant(choice: TenantChoice): string | undefined {
  return choice.kind === "default" ? undefined : choice.tenant;
}
