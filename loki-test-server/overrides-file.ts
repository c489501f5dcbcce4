import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { OverridesError } from "./errors.ts";
import type { TenantLimits } from "./limits.ts";
import { parseByteSize, parseDurationMs } from "./units.ts";

type Converter = (value: unknown, key: string) => Partial<TenantLimits>;

function numberValue(value: unknown, key: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  throw new OverridesError(`${key}: expected a non-negative number, got ${JSON.stringify(value)}`);
}

function durationValue(value: unknown, key: string): number {
  if (typeof value === "string") return parseDurationMs(value, key);
  throw new OverridesError(`${key}: expected a duration string such as "168h", got ${JSON.stringify(value)}`);
}

function booleanValue(value: unknown, key: string): boolean {
  if (typeof value === "boolean") return value;
  throw new OverridesError(`${key}: expected true or false, got ${JSON.stringify(value)}`);
}

/** Loki runtime-override keys this server understands, with their conversion to TenantLimits. */
const CONVERTERS: Record<string, Converter> = {
  ingestion_rate_mb: (v, k) => ({ ingestionRateMb: numberValue(v, k) }),
  ingestion_burst_size_mb: (v, k) => ({ ingestionBurstSizeMb: numberValue(v, k) }),
  per_stream_rate_limit: (v, k) => ({ perStreamRateLimit: parseByteSize(v, k) }),
  per_stream_rate_limit_burst: (v, k) => ({ perStreamRateLimitBurst: parseByteSize(v, k) }),
  max_line_size: (v, k) => ({ maxLineSize: parseByteSize(v, k) }),
  max_label_names_per_series: (v, k) => ({ maxLabelNamesPerSeries: numberValue(v, k) }),
  max_label_name_length: (v, k) => ({ maxLabelNameLength: numberValue(v, k) }),
  max_label_value_length: (v, k) => ({ maxLabelValueLength: numberValue(v, k) }),
  reject_old_samples: (v, k) => ({ rejectOldSamples: booleanValue(v, k) }),
  reject_old_samples_max_age: (v, k) => ({ rejectOldSamplesMaxAgeMs: durationValue(v, k) }),
  creation_grace_period: (v, k) => ({ creationGracePeriodMs: durationValue(v, k) }),
  max_global_streams_per_user: (v, k) => ({ maxGlobalStreamsPerUser: numberValue(v, k) }),
  max_entries_limit_per_query: (v, k) => ({ maxEntriesLimitPerQuery: numberValue(v, k) }),
  max_query_length: (v, k) => ({ maxQueryLengthMs: durationValue(v, k) }),
  max_structured_metadata_size: (v, k) => ({ maxStructuredMetadataSize: parseByteSize(v, k) }),
  max_structured_metadata_entries_count: (v, k) => ({ maxStructuredMetadataEntriesCount: numberValue(v, k) }),
  discover_log_levels: (v, k) => ({ discoverLogLevels: booleanValue(v, k) }),
  discover_service_name: (v, k) => {
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return { discoverServiceName: v };
    throw new OverridesError(`${k}: expected a list of label names, got ${JSON.stringify(v)}`);
  },
};

/**
 * Parses Loki's runtime overrides YAML (`overrides: {<tenant>: {ingestion_rate_mb: 4, ...}}`).
 * Unknown keys are refused, as Loki refuses unknown fields in that file.
 */
export function parseOverrides(
  yamlText: string,
  source = "overrides",
): Record<string, Partial<TenantLimits>> {
  let document: unknown;
  try {
    document = parse(yamlText);
  } catch (error) {
    throw new OverridesError(`${source}: not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  if (document === null || document === undefined) return {};
  if (typeof document !== "object" || Array.isArray(document)) {
    throw new OverridesError(`${source}: expected a mapping with an "overrides" key`);
  }
  const result: Record<string, Partial<TenantLimits>> = {};
  for (const [topKey, topValue] of Object.entries(document)) {
    if (topKey !== "overrides") {
      throw new OverridesError(`${source}: unsupported top-level key ${JSON.stringify(topKey)}`);
    }
    if (topValue === null) continue;
    if (typeof topValue !== "object" || Array.isArray(topValue)) {
      throw new OverridesError(`${source}: "overrides" must map tenant ids to limits`);
    }
    for (const [tenant, tenantValue] of Object.entries(topValue as Record<string, unknown>)) {
      if (tenantValue === null) continue;
      if (typeof tenantValue !== "object" || Array.isArray(tenantValue)) {
        throw new OverridesError(`${source}: overrides.${tenant} must be a mapping of limits`);
      }
      const limits: Partial<TenantLimits> = {};
      for (const [key, value] of Object.entries(tenantValue as Record<string, unknown>)) {
        const convert = CONVERTERS[key];
        const path = `${source}: overrides.${tenant}.${key}`;
        if (!convert) throw new OverridesError(`${path}: unsupported limit`);
        Object.assign(limits, convert(value, path));
      }
      result[tenant] = limits;
    }
  }
  return result;
}

export async function readOverridesFile(path: string): Promise<Record<string, Partial<TenantLimits>>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new OverridesError(`cannot read overrides file ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseOverrides(text, path);
}
