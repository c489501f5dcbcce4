import type { S3Client } from "@aws-sdk/client-s3";
import type { LokiFaultProxy } from "../test/helpers/loki-fault-proxy.ts";
import type { FaultWindow } from "./schedule.ts";

/** What the drivers look at to know which faults are on right now. */
export interface FaultState {
  s3Refusing: boolean;
  cutoff: boolean;
  /** --lose-on-purpose: spill chunks still to be "written" without writing them. */
  spillsToLose: number;
  lostKeys: string[];
}

export function newFaultState(loseOnPurpose: boolean): FaultState {
  return { s3Refusing: false, cutoff: false, spillsToLose: loseOnPurpose ? 1 : 0, lostKeys: [] };
}

/**
 * A fault double at the S3 client level: moto cannot refuse a request on demand, so a middleware
 * on the SDK client refuses every PutObject while `s3Refusing` is set, as S3 answering 503 would
 * (thrown before the SDK's own retries, as if they were used up). With --lose-on-purpose it also
 * answers "written" for the first spill chunk without writing it: data lost on purpose, for the
 * audit to find.
 */
export function addS3Faults(s3: S3Client, state: FaultState): S3Client {
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "PutObjectCommand") {
        const key = String((args.input as { Key?: unknown }).Key ?? "");
        if (state.s3Refusing) {
          throw Object.assign(new Error(`S3 refuses writes (soak fault) for ${key}`), {
            name: "ServiceUnavailable",
            $fault: "server",
            $metadata: { httpStatusCode: 503 },
          });
        }
        if (state.spillsToLose > 0 && key.startsWith("spill/")) {
          state.spillsToLose--;
          state.lostKeys.push(key);
          return { output: { $metadata: { httpStatusCode: 200 } } as never, response: {} };
        }
      }
      return next(args);
    },
    { step: "initialize", name: "soakS3Faults" },
  );
  return s3;
}

/** Loki and the proxy in front of it, as the fault runner sees them. */
export interface LokiControl {
  proxy: LokiFaultProxy;
  /** kill -9 and restart on the same data (a real Loki only). */
  crashAndRestart?: () => Promise<void>;
}

/** An applied fault: when it really started and ended, for the report and the timeline. */
export interface AppliedFault extends FaultWindow {
  note?: string;
}

/** Sets each fault on at its start and off at its end; resolves with what was applied. */
export function runSchedule(
  windows: FaultWindow[],
  loki: LokiControl,
  state: FaultState,
  startedAt: number,
  log: (line: string) => void,
): { applied: AppliedFault[]; done: Promise<void>; stop: () => Promise<void> } {
  const applied: AppliedFault[] = [];
  const timers: NodeJS.Timeout[] = [];
  const pending: Promise<void>[] = [];
  const at = (ms: number, action: () => Promise<void> | void) =>
    new Promise<void>((resolve) => {
      timers.push(
        setTimeout(
          () =>
            void Promise.resolve()
              .then(action)
              .catch((error: Error) => log(`fault action failed: ${error.message}`))
              .finally(resolve),
          Math.max(0, startedAt + ms - Date.now()),
        ),
      );
    });
  for (const window of windows) {
    const record: AppliedFault = { ...window };
    applied.push(record);
    pending.push(
      at(window.startMs, () => faultOn(window, loki, state, log)),
      at(window.endMs, async () => {
        await faultOff(window, loki, state);
        if (window.kind === "loki-kill") record.endMs = Date.now() - startedAt;
      }),
    );
  }
  return {
    applied,
    done: Promise.all(pending).then(() => undefined),
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      loki.proxy.setFault(undefined);
      await loki.proxy.up().catch(() => undefined);
      state.s3Refusing = false;
      state.cutoff = false;
    },
  };
}

/** Past LOKI_TIMEOUT (2 s in the soak): the shipper gives up on the push. */
const SLOW_ANSWER_MS = 3_000;

async function faultOn(
  window: FaultWindow,
  loki: LokiControl,
  state: FaultState,
  log: (line: string) => void,
): Promise<void> {
  log(`fault on: ${window.kind}`);
  switch (window.kind) {
    case "loki-down":
      return loki.proxy.down();
    case "429-storm":
      return loki.proxy.setFault({
        kind: "status",
        status: 429,
        body: "Ingestion rate limit exceeded (soak)\n",
      });
    case "5xx":
      return loki.proxy.setFault({ kind: "status", status: 503 });
    case "slow":
      return loki.proxy.setFault({ kind: "latency", ms: SLOW_ANSWER_MS });
    case "reset":
      return loki.proxy.setFault({ kind: "reset" });
    case "loki-kill":
      return loki.crashAndRestart?.();
    case "s3-refuse":
      state.s3Refusing = true;
      return;
    case "cutoff":
      state.cutoff = true;
      return;
  }
}

async function faultOff(window: FaultWindow, loki: LokiControl, state: FaultState): Promise<void> {
  switch (window.kind) {
    case "loki-down":
      return loki.proxy.up();
    case "s3-refuse":
      state.s3Refusing = false;
      return;
    case "cutoff":
      state.cutoff = false;
      return;
    case "loki-kill":
      return;
    default:
      loki.proxy.setFault(undefined);
  }
}
