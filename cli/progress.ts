import cliProgress from "cli-progress";
import type { WorkflowProgress } from "./local-workflow.ts";
import type { Output } from "./output.ts";

/**
 * Live progress of a run: a bar on a terminal, a plain line every few seconds otherwise (CI logs,
 * pipes). The total is known only for a replay; a backfill shows counts and rate.
 */
export interface ProgressDisplay {
  update(progress: WorkflowProgress): void;
  stop(): void;
}

const PLAIN_LINE_INTERVAL_MS = 5_000;

export function createProgressDisplay(
  output: Output,
  label: string,
  now: () => number = Date.now,
): ProgressDisplay {
  const startedAt = now();
  const rate = (events: number) => {
    const seconds = (now() - startedAt) / 1000;
    return seconds > 0 ? Math.round(events / seconds) : 0;
  };
  if (output.interactive) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} {spinner} exported {exported} | pushed {pushed} | {rate} events/s | throttled {throttled} | {duration_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(1, 0, { exported: 0, pushed: 0, rate: 0, throttled: 0, spinner: "" });
    let ticks = 0;
    return {
      update(progress) {
        ticks += 1;
        bar.update(0, {
          ...progress,
          rate: rate(Math.max(progress.exported, progress.pushed)),
          spinner: "|/-\\"[ticks % 4],
        });
      },
      stop: () => bar.stop(),
    };
  }
  let lastLineAt = 0;
  let latest: WorkflowProgress = { exported: 0, pushed: 0, throttled: 0 };
  const line = () =>
    output.out(
      `${label}: exported ${latest.exported}, pushed ${latest.pushed}, ${rate(Math.max(latest.exported, latest.pushed))} events/s, throttled ${latest.throttled}`,
    );
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
