import { stringify } from "yaml";
import { type LimitKind, LOKI_LIMITS } from "./limit-names.ts";
import { DEFAULT_TENANT_LIMITS, type LimitsRegistry, type TenantLimits } from "./limits.ts";
import { formatByteSize, formatModelDuration } from "./units.ts";

type LimitValue = TenantLimits[keyof TenantLimits];

/** How Loki prints each kind of limit in YAML: sizes and durations in its own units. */
const PRINTERS: Record<LimitKind, (value: LimitValue) => unknown> = {
  number: (value) => value,
  bytes: (value) => formatByteSize(value as number),
  duration: (value) => formatModelDuration(value as number),
  boolean: (value) => value,
  names: (value) => value,
};

/** A tenant's limits under Loki's names, as Loki prints them; with `onlyChanged`, those unlike the defaults. */
function printedLimits(limits: TenantLimits, onlyChanged: boolean): Record<string, unknown> {
  const printed: Record<string, unknown> = {};
  for (const { name, field, kind } of LOKI_LIMITS) {
    const value = PRINTERS[kind](limits[field]);
    const unchanged = JSON.stringify(value) === JSON.stringify(PRINTERS[kind](DEFAULT_TENANT_LIMITS[field]));
    if (!onlyChanged || !unchanged) printed[name] = value;
  }
  return printed;
}

/**
 * The body of `GET /runtime_config`, like Loki's: the runtime configuration as YAML, every tenant
 * of the overrides with all its limits, or with `?mode=diff` only the limits unlike the defaults.
 * Tenants are sorted (Go's YAML encoder sorts map keys); only the limits this server implements
 * are printed, with sizes and durations in Loki's units ("256KB", "1w").
 */
export function runtimeConfigYaml(registry: LimitsRegistry, mode: string | null): string {
  const overrides: Record<string, Record<string, unknown>> = {};
  for (const tenant of registry.overriddenTenants().sort()) {
    const printed = printedLimits(registry.get(tenant), mode === "diff");
    if (Object.keys(printed).length > 0) overrides[tenant] = printed;
  }
  return stringify({ overrides }, { indentSeq: false, aliasDuplicateObjects: false });
}
