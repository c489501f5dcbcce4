import { describe, expect, it } from "vitest";
import { ConfigError } from "../../functions/core/errors.ts";
import { parseLabelOptions, resolveGroupLabels } from "../../functions/core/labels/labels.ts";
import {
  chooseTenant,
  parseTenantRouting,
  tenantProblem,
} from "../../functions/core/labels/tenant-routing.ts";

const ROUTING_ENV = {
  LABEL_TENANT_TAG: "loki_tenant",
  LOKI_TENANTS_ALLOWED: "team-a, team-b,/^shared-[a-z]+$/",
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseLabelOptions(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("parseTenantRouting", () => {
  it("is off by default: no tag key, every group goes to the default tenant", () => {
    const routing = parseTenantRouting({});
    expect(routing.tagKey).toBeUndefined();
    expect(chooseTenant(routing, { group: { loki_tenant: "team-a" } })).toEqual({ kind: "default" });
  });

  it("refuses a tenant tag without an allow list, along with the other label mistakes", () => {
    expect(problemsOf({ LABEL_TENANT_TAG: "loki_tenant", LABEL_LOG_GROUP: "maybe" })).toEqual([
      'LABEL_LOG_GROUP: expected true or false (got "maybe")',
      'LOKI_TENANTS_ALLOWED: LABEL_TENANT_TAG=loki_tenant routes log groups to the tenant their tag names, which needs the list of tenants they may choose (e.g. "team-a,team-b,/^shared-.*$/") (not set)',
    ]);
  });

  it("names every bad entry of the allow list: an invalid tenant ID and an invalid pattern", () => {
    expect(problemsOf({ LABEL_TENANT_TAG: "loki_tenant", LOKI_TENANTS_ALLOWED: "team a,/(a/,ok" })).toEqual([
      'LOKI_TENANTS_ALLOWED: "team a" is not a valid Loki tenant ID (up to 150 of a-z A-Z 0-9 ! - _ . * \' ( ), not "." or ".."); write a pattern as /regex/',
      expect.stringMatching(/^LOKI_TENANTS_ALLOWED: \/\(a\/ is not a valid RE2 regular expression/),
    ]);
  });
});

describe("the allow list", () => {
  it("keeps the commas of a pattern: /^team-[a-z]{2,8}$/ is one item", () => {
    const routing = parseTenantRouting({
      LABEL_TENANT_TAG: "t",
      LOKI_TENANTS_ALLOWED: "ops, /^team-[a-z]{2,8}$/ ,dev",
    });
    expect([...routing.names]).toEqual(["ops", "dev"]);
    expect(tenantProblem("team-web", routing)).toBeUndefined();
    expect(tenantProblem("team-w", routing)).toMatch(/is not in LOKI_TENANTS_ALLOWED/);
  });
});

describe("chooseTenant", () => {
  const routing = parseTenantRouting(ROUTING_ENV);

  it("takes the group's tag over the function's, and the function's when the group has none", () => {
    expect(
      chooseTenant(routing, { group: { loki_tenant: "team-a" }, function: { loki_tenant: "team-b" } }),
    ).toEqual({
      kind: "tag",
      tenant: "team-a",
      source: "group tag",
    });
    expect(chooseTenant(routing, { group: {}, function: { loki_tenant: "shared-ops" } })).toEqual({
      kind: "tag",
      tenant: "shared-ops",
      source: "function tag",
    });
    expect(chooseTenant(routing, { group: { team: "x" }, function: {} })).toEqual({ kind: "default" });
  });

  it("refuses a tenant outside the list, even when the function's tag names an allowed one", () => {
    const choice = chooseTenant(routing, {
      group: { loki_tenant: "team-z" },
      function: { loki_tenant: "team-a" },
    });
    expect(choice).toMatchObject({ kind: "refused", tenant: "team-z", source: "group tag" });
    expect(choice.kind === "refused" && choice.reason).toBe(
      'tenant "team-z" is not in LOKI_TENANTS_ALLOWED (team-a, team-b,/^shared-[a-z]+$/); its events are kept in rejected/ and never sent to another tenant: add the tenant to LOKI_TENANTS_ALLOWED or fix the loki_tenant tag, then replay rejected/ (loki-shipper replay --source rejected)',
    );
  });

  it("matches a pattern against the whole tenant name, and never allows an invalid tenant ID", () => {
    expect(tenantProblem("shared-ops", routing)).toBeUndefined();
    expect(tenantProblem("evil-shared-ops", routing)).toMatch(/is not in LOKI_TENANTS_ALLOWED/);
    expect(tenantProblem("shared-opsX", routing)).toMatch(/is not in LOKI_TENANTS_ALLOWED/);
    const anything = parseTenantRouting({ LABEL_TENANT_TAG: "loki_tenant", LOKI_TENANTS_ALLOWED: "/.*/" });
    // A `|` would name several tenants in one X-Scope-OrgID.
    expect(tenantProblem("team-a|team-b", anything)).toMatch(/is not a valid Loki tenant ID/);
    expect(chooseTenant(anything, { group: { loki_tenant: "team-a|team-b" } })).toMatchObject({
      kind: "refused",
    });
  });

  it("counts an empty value as no tag, as removing the tag would: the function's tag or the default", () => {
    expect(
      chooseTenant(routing, { group: { loki_tenant: "" }, function: { loki_tenant: "team-b" } }),
    ).toMatchObject({
      kind: "tag",
      tenant: "team-b",
    });
    expect(chooseTenant(routing, { group: { loki_tenant: "" } })).toEqual({ kind: "default" });
  });
});

describe("the tenant tag and the labels", () => {
  it("is never a label, and comes from the function only when function labels are on", () => {
    const sources = { groupTags: { team: "web" }, functionTags: { loki_tenant: "team-b", name: "fn" } };
    const options = parseLabelOptions(ROUTING_ENV);
    const resolved = resolveGroupLabels("/aws/lambda/fn", sources, options, {});
    expect(resolved.labels).not.toHaveProperty("loki_tenant");
    expect(resolved.labels).toMatchObject({ team: "web", name: "fn" });
    expect(resolved.dropped).toContainEqual({
      key: "loki_tenant",
      reason: "chooses the Loki tenant (LABEL_TENANT_TAG): never a label",
    });
    expect(resolved.tenant).toEqual({ kind: "tag", tenant: "team-b", source: "function tag" });

    const withoutFunctions = parseLabelOptions({ ...ROUTING_ENV, LABEL_LAMBDA_FUNCTION: "false" });
    expect(resolveGroupLabels("/aws/lambda/fn", sources, withoutFunctions, {}).tenant).toEqual({
      kind: "default",
    });
  });
});
