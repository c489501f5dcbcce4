import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";

/**
 * Loki and the shipper on cores of their own (`taskset` from util-linux), for the pinned rows of
 * sections 2 and 3: on a 2-core machine, unpinned, the shipper and Loki take CPU from each other,
 * and "live ÷ ceiling" measures the machine more than the shipper. Pinned, Loki has core 0 and this
 * process (the minimal pusher, then the shipper) core 1.
 */
export interface Pinning {
  /** What the rows measured pinned say about it. */
  description: string;
  pin(): void;
  unpin(): void;
}

const LOKI_CORE = "0";
const SHIPPER_CORE = "1";

/** Pinning for the Loki process `lokiPid`, or why there is none. */
export function corePinning(lokiPid: number | undefined): Pinning | string {
  if (lokiPid === undefined) return "Loki was not started by the benchmark (LOKI_URL): it cannot be pinned";
  if (availableParallelism() < 2) return "the machine has fewer than 2 cores";
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
  } catch {
    return "taskset (util-linux) is not installed";
  }
  const allCores = `0-${availableParallelism() - 1}`;
  // -a: every thread of the process (Loki's Go threads, Node's libuv and V8 threads).
  const setCores = (pid: number, cores: string) =>
    execFileSync("taskset", ["-a", "-p", "-c", cores, String(pid)], { stdio: "ignore" });
  return {
    description: `Loki on core ${LOKI_CORE}, the pushing process on core ${SHIPPER_CORE} (taskset)`,
    pin() {
      setCores(lokiPid, LOKI_CORE);
      setCores(process.pid, SHIPPER_CORE);
    },
    unpin() {
      setCores(lokiPid, allCores);
      setCores(process.pid, allCores);
    },
  };
}

/** Runs `measure` pinned, and unpins whatever happens. */
export async function pinnedRun<T>(pinning: Pinning, measure: () => Promise<T>): Promise<T> {
  pinning.pin();
  try {
    return await measure();
  } finally {
    pinning.unpin();
  }
}
