import cliProgress from "cli-progress";
import type { Output } from "./output.ts";
import { noProgress, type RunProgress } from "./run-progress.ts";

/**
 * Live progress of a run: a bar of the plan's units done with an estimate of the time left on a
 * terminal, a plain line every few seconds otherwise (CI logs, pipes).
 */
export interface ProgressDisplay {
  update(progress: RunProgress): void;
  stop(): void;
}

const PLAIN_LINE_INTERVAL_MS = 5_000;

export function createProgressDisplay(
  output: Output,
  label: string,
  options: { unit: string; now?: () => number; startedAt?: number },
): ProgressDisplay {
  const now = options.now ?? Date.now;
  const startedAt = options.startedAt ?? now();
  let latest = noProgress();
  const fields = () => progressFields(latest, now() - startedAt);
  if (output.interactive) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {done}/{planned} ${options.unit} | exported {exported} | pushed {pushed} | {rate} events/s | throttled {throttled} | {elapsed} | ETA {left}`,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 24,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, 0, fields());
    const render = () =>
      bar.update(latest.unitsTotal > 0 ? latest.unitsDone / latest.unitsTotal : 0, fields());
    return {
      update(progress) {
        latest = { ...progress };
        render();
      },
      stop: () => {
        render();
        bar.stop();
      },
    };
  }
  let lastLineAt = Number.NEGATIVE_INFINITY;
  const line = () => output.out(describeProgress(label, options.unit, latest, now() - startedAt));
  return {
    update(progress) {
      latest = { ...progress };
      if (now() - lastLineAt >= PLAIN_LINE_INTERVAL_MS) {
        lastLineAt = now();
        line();
      }
    },
    stop: () => line(),
  };
}

const TEXT_BAR_WIDTH = 20;

/** One line with a text bar, for logs, pipes and `status`: the same figures as the terminal bar. */
export function describeProgress(
  label: string,
  unit: string,
  progress: RunProgress,
  elapsedMs: number,
): string {
  const f = progressFields(progress, elapsedMs);
  const filled =
    progress.unitsTotal > 0 ? Math.round((progress.unitsDone / progress.unitsTotal) * TEXT_BAR_WIDTH) : 0;
  const bar = `${"#".repeat(filled)}${"-".repeat(TEXT_BAR_WIDTH - filled)}`;
  return `${label} [${bar}] ${f.done}/${f.planned} ${unit} | exported ${f.exported} | pushed ${f.pushed} | ${f.rate} events/s | throttled ${f.throttled} | ${f.elapsed} | ETA ${f.left}`;
}

/** The figures both displays show, formatted. */
export function progressFields(progress: RunProgress, elapsedMs: number) {
  const seconds = elapsedMs / 1000;
  const { unitsDone, unitsTotal } = progress;
  return {
    exported: progress.exported,
    pushed: progress.pushed,
    throttled: progress.throttled,
    rate: seconds > 0 ? Math.round(Math.max(progress.exported, progress.pushed) / seconds) : 0,
    done: unitsDone,
    planned: unitsTotal > 0 ? unitsTotal : "?",
    elapsed: formatDuration(elapsedMs),
    // Not "eta": cli-progress fills its own {eta} token, from the bar's value alone.
    left: formatEta(unitsDone, unitsTotal, elapsedMs),
  };
}

/** Time left if the remaining units take as long as the finished ones did on average. */
export function formatEta(done: number, total: number, elapsedMs: number): string {
  if (total > 0 && done >= total) return "0s";
  if (done === 0 || total === 0) return "-";
  return formatDuration((elapsedMs / done) * (total - done));
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
