import { mkdir, readFile, rename, rmdir, writeFile } from "node:fs/promises";
import { parse, stringify } from "yaml";
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
export type LokiLimits = Partial<Record<LokiLimitName, string | number | boolean>>;

interface OverridesDocument {
  overrides?: Record<string, Record<string, unknown>> | null;
}

/** A real Loki reloads its overrides file every `runtime_config.period`: 10 s by default. */
const DEFAULT_RELOAD_PERIOD = "10s";

/** How often `GET /runtime_config` is asked whether the new limits are live. */
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
 * Waits until Loki applies `limits` to `tenant`: polls Loki's `GET /runtime_config` (the runtime
 * configuration it currently applies, which the Loki test server serves too) until the tenant's
 * values match. Every Loki that reads a runtime-overrides file serves that endpoint, so any other
 * answer is an error, not a reason to guess at a wait.
 */
export async function waitForTenantOverrides(
  lokiUrl: string,
  tenant: string,
  limits: LokiLimits,
): Promise<void> {
  const periodMs = overridesReloadPeriodMs();
  const giveUpAt = Date.now() + Math.max(30_000, 3 * periodMs);
  let seen = "nothing yet";
  while (Date.now() < giveUpAt) {
    const answer = await fetch(new URL("/runtime_config", lokiUrl));
    const body = await answer.text();
    if (answer.status !== 200) {
      throw new Error(
        `Loki at ${lokiUrl} answered GET /runtime_config with HTTP ${answer.status} (${body.slice(0, 200)}): ` +
          "tests that set tenant limits need that endpoint to see when Loki has applied them",
      );
    }
    const applied = (parse(body) as OverridesDocument | null)?.overrides?.[tenant];
    if (applied && Object.entries(limits).every(([key, value]) => sameLimit(value, applied[key]))) return;
    seen = JSON.stringify(applied ?? null);
    await sleep(POLL_MS);
  }
  throw new Error(
    `Loki at ${lokiUrl} did not apply ${JSON.stringify(limits)} to tenant ${tenant} in time (it shows ${seen}): ` +
      "is LOKI_TEST_OVERRIDES the file of Loki's runtime_config.file, and LOKI_TEST_OVERRIDES_PERIOD its period?",
  );
}

/** Loki prints limits in its own units ("1d", "1000B"): compare values, not spellings. */
function sameLimit(written: string | number | boolean, applied: unknown): boolean {
  if (String(written) === String(applied)) return true;
  if (typeof applied === "number" && Number(written) === applied) return true;
  for (const parseValue of [
    (v: unknown) => parseDurationMs(String(v), "limit"),
    (v: unknown) => parseByteSize(v, "limit"),
  ]) {
    try {
      if (parseValue(written) === parseValue(applied)) return true;
    } catch {
      // Not that kind of value: try the next.
    }
  }
  return false;
}
