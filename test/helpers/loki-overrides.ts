import { mkdir, readFile, rename, rmdir, writeFile } from "node:fs/promises";
import { parse, stringify } from "yaml";
import { LOKI_LIMITS } from "../../loki-test-server/limit-names.ts";
import { parseByteSize, parseDurationMs } from "../../loki-test-server/units.ts";

/** The limits tests set, under Loki's own names (`limits_config` / runtime overrides). */
type LokiLimitName =
  | "ingestion_rate_mb"
  | "ingestion_burst_size_mb"
  | "per_stream_rate_limit"
  | "per_stream_rate_limit_burst"
  | "max_line_size"
  | "max_label_names_per_series"
  | "reject_old_samples"
  | "reject_old_samples_max_age"
  | "creation_grace_period"
  | "max_global_streams_per_user";

/** Tenant limits under Loki's own names, as its runtime-overrides file holds them. */
export type LokiLimits = Partial<Record<LokiLimitName, string | number | boolean>> & {
  /** Stream sharding (`shard_streams`): Loki's /metrics does not show it, see waitForTenantOverrides. */
  shard_streams?: { enabled?: boolean; desired_rate?: string };
};

interface OverridesDocument {
  overrides?: Record<string, Record<string, unknown>> | null;
}

/** A real Loki reloads its overrides file every `runtime_config.period`: 10 s by default. */
const DEFAULT_RELOAD_PERIOD = "10s";

/** How often `GET /metrics` is asked whether the new limits are in force. */
const POLL_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The reload period of the external Loki (LOKI_TEST_OVERRIDES_PERIOD, Loki's 10 s by default). */
export function overridesReloadPeriodMs(): number {
  return parseDurationMs(
    process.env.LOKI_TEST_OVERRIDES_PERIOD || DEFAULT_RELOAD_PERIOD,
    "LOKI_TEST_OVERRIDES_PERIOD",
  );
}

/**
 * Adds `limits` to `tenant`'s overrides in the file, keeping every other tenant's: test files run in
 * parallel processes and share one file, so the read-modify-write happens under a lock directory
 * and the new file replaces the old by rename (Loki never reads a half-written file).
 */
export async function writeTenantOverrides(file: string, tenant: string, limits: LokiLimits): Promise<void> {
  await withLock(`${file}.lock`, async () => {
    const document = await readOverrides(file);
    const overrides = { ...document.overrides, [tenant]: { ...document.overrides?.[tenant], ...limits } };
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, stringify({ ...document, overrides }));
    await rename(temporary, file);
  });
}

async function readOverrides(file: string): Promise<OverridesDocument> {
  try {
    return (parse(await readFile(file, "utf8")) as OverridesDocument | null) ?? {};
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
}

async function withLock(lockDir: string, work: () => Promise<void>): Promise<void> {
  const giveUpAt = Date.now() + 30_000;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (Date.now() > giveUpAt) {
        throw new Error(`the overrides file lock ${lockDir} is held for 30 s: remove it if no test runs`);
      }
      await sleep(20);
    }
  }
  try {
    await work();
  } finally {
    await rmdir(lockDir);
  }
}

/**
 * Waits until Loki applies `limits` to `tenant`, the way a real Loki shows it: started with
 * `-target=all,overrides-exporter`, its `GET /metrics` has `loki_overrides{limit_name,user}` for
 * each limit of a tenant that differs from the default, and `loki_overrides_defaults{limit_name}`
 * for every limit (the Loki test server serves the same lines). A limit is in force when the
 * tenant's line shows the value, or when there is no line and the default is the value.
 */
export async function waitForTenantOverrides(
  lokiUrl: string,
  tenant: string,
  limits: LokiLimits,
): Promise<void> {
  // Loki reloads the overrides file as a whole: limits it does not export (shard_streams) are in
  // force once those it exports, written with them, are.
  const { shard_streams: _notExported, ...exported } = limits;
  const expected = Object.entries(exported).map(([name, value]) => ({
    name,
    value: gaugeValue(name, value),
  }));
  if (expected.length === 0) {
    throw new Error(
      `${JSON.stringify(limits)}: Loki's /metrics does not show these; set a limit it shows with them (e.g. per_stream_rate_limit)`,
    );
  }
  const periodMs = overridesReloadPeriodMs();
  const giveUpAt = Date.now() + Math.max(30_000, 3 * periodMs);
  let seen = "nothing yet";
  while (Date.now() < giveUpAt) {
    const answer = await fetch(new URL("/metrics", lokiUrl));
    const body = await answer.text();
    if (answer.status !== 200) {
      throw new Error(
        `Loki at ${lokiUrl} answered GET /metrics with HTTP ${answer.status} (${body.slice(0, 200)}): ` +
          "tests that set tenant limits read loki_overrides there to see when Loki has applied them",
      );
    }
    const gauges = overridesGauges(body, tenant);
    const inForce = expected.map(({ name }) => gauges.tenant.get(name) ?? gauges.defaults.get(name));
    if (expected.every(({ value }, index) => inForce[index] === value)) return;
    seen = JSON.stringify(
      Object.fromEntries(expected.map(({ name }, index) => [name, inForce[index] ?? null])),
    );
    await sleep(POLL_MS);
  }
  throw new Error(
    `Loki at ${lokiUrl} did not apply ${JSON.stringify(limits)} to tenant ${tenant} in time (its /metrics shows ${seen}): ` +
      "is LOKI_TEST_OVERRIDES the file of Loki's runtime_config.file, LOKI_TEST_OVERRIDES_PERIOD its period, " +
      "and Loki started with -target=all,overrides-exporter?",
  );
}

/** A limit as Loki's overrides exporter gives it: sizes in bytes, durations in ns, booleans 0 or 1. */
function gaugeValue(name: string, value: string | number | boolean): number {
  const kind = LOKI_LIMITS.find((limit) => limit.name === name)?.kind;
  switch (kind) {
    case "bytes":
      return parseByteSize(value, name);
    case "duration":
      return parseDurationMs(String(value), name) * 1_000_000;
    case "boolean":
      return value === true || value === "true" ? 1 : 0;
    case "number":
      return Number(value);
    default:
      throw new Error(`${name} is not a limit that Loki's overrides exporter shows as a number`);
  }
}

const OVERRIDES_LINE = /^(loki_overrides(?:_defaults)?)\{([^}]*)\} (\S+)$/;

/** The tenant's `loki_overrides` and the `loki_overrides_defaults`, by limit name. */
function overridesGauges(metrics: string, tenant: string) {
  const found = { tenant: new Map<string, number>(), defaults: new Map<string, number>() };
  for (const line of metrics.split("\n")) {
    const match = OVERRIDES_LINE.exec(line);
    if (!match) continue;
    const [, metric, labelText, value] = match as unknown as [string, string, string, string];
    const labels = Object.fromEntries(
      [...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, key, text]) => [key, text]),
    );
    const name = labels.limit_name;
    if (!name) continue;
    if (metric === "loki_overrides_defaults") found.defaults.set(name, Number(value));
    else if (labels.user === tenant) found.tenant.set(name, Number(value));
  }
  return found;
}
