import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { OverridesError } from "./errors.ts";
import { type LimitKind, LOKI_LIMIT_BLOCKS, LOKI_LIMITS } from "./limit-names.ts";
import type { TenantLimits } from "./limits.ts";
import { parseByteSize, parseDurationMs } from "./units.ts";

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

function namesValue(value: unknown, key: string): string[] {
  if (Array.isArray(value) && value.every((name) => typeof name === "string")) return value;
  throw new OverridesError(`${key}: expected a list of label names, got ${JSON.stringify(value)}`);
}

/** How each kind of limit is read from the file. */
const PARSERS: Record<LimitKind, (value: unknown, key: string) => TenantLimits[keyof TenantLimits]> = {
  number: numberValue,
  bytes: parseByteSize,
  duration: durationValue,
  boolean: booleanValue,
  names: namesValue,
};

const LIMITS_BY_NAME = new Map(LOKI_LIMITS.map((limit) => [limit.name, limit]));
const BLOCKS_BY_NAME = new Map(LOKI_LIMIT_BLOCKS.map((block) => [block.name, block]));

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A block of limits (`shard_streams: {...}`) into `limits`; keys it leaves out keep their defaults. */
function readBlock(
  block: (typeof LOKI_LIMIT_BLOCKS)[number],
  value: unknown,
  path: string,
  limits: Partial<Record<keyof TenantLimits, unknown>>,
): void {
  if (value === null) return;
  if (!isMapping(value)) throw new OverridesError(`${path}: expected a mapping`);
  for (const [key, inner] of Object.entries(value)) {
    const limit = block.limits.find((candidate) => candidate.name === key);
    if (!limit) throw new OverridesError(`${path}.${key}: unsupported limit`);
    limits[limit.field] = PARSERS[limit.kind](inner, `${path}.${key}`);
  }
}

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
      const limits: Partial<Record<keyof TenantLimits, unknown>> = {};
      for (const [key, value] of Object.entries(tenantValue as Record<string, unknown>)) {
        const path = `${source}: overrides.${tenant}.${key}`;
        const block = BLOCKS_BY_NAME.get(key);
        if (block) {
          readBlock(block, value, path, limits);
          continue;
        }
        const limit = LIMITS_BY_NAME.get(key);
        if (!limit) throw new OverridesError(`${path}: unsupported limit`);
        limits[limit.field] = PARSERS[limit.kind](value, path);
      }
      result[tenant] = limits as Partial<TenantLimits>;
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
