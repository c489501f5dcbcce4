/**
 * The soak's fault schedule: a list of windows drawn from a seed, so that a run can be repeated.
 * Loki's faults go through one proxy and never overlap each other; S3 refusals and cut-off
 * invocations have windows of their own, which may overlap Loki's.
 */
type LokiFaultKind = "loki-down" | "429-storm" | "5xx" | "slow" | "reset" | "loki-kill";
type FaultKind = LokiFaultKind | "s3-refuse" | "cutoff";

export interface FaultWindow {
  kind: FaultKind;
  /** Milliseconds after the soak's start. */
  startMs: number;
  endMs: number;
}

/** mulberry32: a small seeded generator, enough to draw a schedule. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const between = (random: () => number, min: number, max: number) => min + Math.floor(random() * (max - min));

/**
 * The windows of a soak of `durationMs`. The last 15 s are always quiet, so that the last
 * invocations see no fault before the final drain. `lokiKill` adds `kill -9` of a real Loki.
 */
export function buildSchedule(seed: number, durationMs: number, lokiKill: boolean): FaultWindow[] {
  const random = seededRandom(seed);
  const end = durationMs - 15_000;
  const windows: FaultWindow[] = [];
  // Throttling twice as often as the rest: the fault a busy tenant meets most.
  const lokiKinds: LokiFaultKind[] = ["loki-down", "429-storm", "429-storm", "5xx", "slow", "reset"];
  if (lokiKill) lokiKinds.push("loki-kill");
  // Loki: a fault, then a quiet gap, one after the other.
  for (let at = between(random, 3_000, 8_000); at < end; ) {
    const kind = lokiKinds[Math.floor(random() * lokiKinds.length)] as LokiFaultKind;
    // A kill is an instant: the window is the restart, which takes what it takes.
    const length = kind === "loki-kill" ? 1_000 : between(random, 4_000, 12_000);
    windows.push({ kind, startMs: at, endMs: Math.min(at + length, end) });
    at += length + between(random, 4_000, 10_000);
  }
  // S3 refusing writes: about one window in every 40 s; one longer than the retries (3 s + 6 s)
  // sends its events to the failure queue.
  for (let at = between(random, 10_000, 30_000); at < end; at += between(random, 30_000, 50_000)) {
    windows.push({
      kind: "s3-refuse",
      startMs: at,
      endMs: Math.min(at + between(random, 3_000, 8_000), end),
    });
  }
  // Invocations cut off at their deadline: about one window in every 20 s.
  for (let at = between(random, 5_000, 15_000); at < end; at += between(random, 15_000, 25_000)) {
    windows.push({ kind: "cutoff", startMs: at, endMs: Math.min(at + between(random, 2_000, 5_000), end) });
  }
  return windows.sort((a, b) => a.startMs - b.startMs);
}

export function scheduleText(seed: number, windows: FaultWindow[]): string {
  const lines = [`Fault schedule (seed ${seed}), seconds after the start:`];
  for (const window of windows) {
    lines.push(
      `  ${(window.startMs / 1000).toFixed(1).padStart(7)} .. ${(window.endMs / 1000).toFixed(1).padStart(7)}  ${window.kind}`,
    );
  }
  return lines.join("\n");
}

export function countByKind(windows: FaultWindow[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const window of windows) counts[window.kind] = (counts[window.kind] ?? 0) + 1;
  return counts;
}
