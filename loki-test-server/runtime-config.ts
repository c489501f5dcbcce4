import type { LimitsRegistry } from "./limits.ts";
import { readOverridesFile } from "./overrides-file.ts";

/** Loki's `runtime_config.period` default: how often the runtime-overrides file is read again. */
export const DEFAULT_RUNTIME_CONFIG_PERIOD_MS = 10_000;

export interface RuntimeConfigOptions {
  /** Loki's runtime-overrides YAML file. */
  path: string;
  /** `runtime_config.period` (default 10s). */
  periodMs?: number;
  /** Called when a reload fails; the limits read before stay in force, as in Loki. */
  onReloadError?: (error: Error) => void;
}

/**
 * Reads the runtime-overrides file now (an unreadable or invalid file fails the start, as it fails
 * Loki's) and again every period, like Loki's runtime config manager: a test that writes the file
 * and waits sees the new limits, as it would against a real Loki. Returns a function that stops it.
 */
export async function watchOverridesFile(
  limits: LimitsRegistry,
  options: RuntimeConfigOptions,
): Promise<() => void> {
  const initial = await readOverridesFile(options.path);
  limits.setFileOverrides(initial);
  let lastText = JSON.stringify(initial);
  let reading = false;
  const timer = setInterval(async () => {
    if (reading) return;
    reading = true;
    try {
      const overrides = await readOverridesFile(options.path);
      const text = JSON.stringify(overrides);
      if (text !== lastText) limits.setFileOverrides(overrides);
      lastText = text;
    } catch (error) {
      options.onReloadError?.(error as Error);
    } finally {
      reading = false;
    }
  }, options.periodMs ?? DEFAULT_RUNTIME_CONFIG_PERIOD_MS);
  timer.unref();
  return () => clearInterval(timer);
}
