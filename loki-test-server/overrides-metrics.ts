import { type LimitKind, LOKI_LIMITS } from "./limit-names.ts";
import { DEFAULT_TENANT_LIMITS, type LimitsRegistry, type TenantLimits } from "./limits.ts";

type LimitValue = TenantLimits[keyof TenantLimits];

/**
 * How Loki's overrides exporter gives each kind of limit as a gauge value: sizes in bytes,
 * durations in nanoseconds, booleans as 0 or 1. Lists are not scalars and are not exported.
 */
const GAUGE_VALUES: Record<LimitKind, ((value: LimitValue) => number) | undefined> = {
  number: (value) => value as number,
  bytes: (value) => value as number,
  duration: (value) => (value as number) * 1_000_000,
  boolean: (value) => (value ? 1 : 0),
  names: undefined,
};

/** A float as Prometheus' Go client prints it (`%g`, shortest): 1000, 0.5, 3.145728e+06, 6e+10. */
export function formatGaugeValue(value: number): string {
  const exponent = value === 0 ? 0 : Math.floor(Math.log10(Math.abs(value)));
  if (exponent >= -4 && exponent < 6) return String(value);
  const [mantissa, power] = value.toExponential().split("e") as [string, string];
  return `${mantissa}e${power[0]}${power.slice(1).padStart(2, "0")}`;
}

function gauges(limits: TenantLimits): Map<string, number> {
  const values = new Map<string, number>();
  for (const { name, field, kind } of LOKI_LIMITS) {
    const toGauge = GAUGE_VALUES[kind];
    if (toGauge) values.set(name, toGauge(limits[field]));
  }
  return values;
}

/**
 * The body of `GET /metrics` as a Loki started with `-target=all,overrides-exporter` gives it for
 * the limits this server implements: `loki_overrides_defaults{limit_name}` for every limit, and
 * `loki_overrides{limit_name,user}` for each limit of each tenant with overrides that differs from
 * the default (Loki exports only the differing ones). Tests read it to know when a rewritten
 * overrides file is in force, on this server and on a real Loki alike.
 */
export function overridesMetricsText(registry: LimitsRegistry): string {
  const defaults = gauges(DEFAULT_TENANT_LIMITS);
  const lines = [
    "# HELP loki_overrides Resource limit overrides applied to tenants",
    "# TYPE loki_overrides gauge",
  ];
  for (const user of registry.overriddenTenants().sort()) {
    for (const [name, value] of [...gauges(registry.get(user))].sort(([a], [b]) => a.localeCompare(b))) {
      if (value !== defaults.get(name)) {
        lines.push(`loki_overrides{limit_name="${name}",user="${user}"} ${formatGaugeValue(value)}`);
      }
    }
  }
  lines.push(
    "# HELP loki_overrides_defaults Default values for resource limit overrides applied to tenants",
    "# TYPE loki_overrides_defaults gauge",
  );
  for (const [name, value] of [...defaults].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`loki_overrides_defaults{limit_name="${name}"} ${formatGaugeValue(value)}`);
  }
  return `${lines.join("\n")}\n`;
}
