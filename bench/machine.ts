import { cpus, freemem, loadavg, totalmem } from "node:os";

/** What the numbers were measured on: they mean little without it. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  freeMemoryGb: number;
  node: string;
  platform: string;
  date: string;
}

export function machineInfo(): MachineInfo {
  const cpuList = cpus();
  return {
    cpuModel: cpuList[0]?.model.trim() ?? "unknown",
    cores: cpuList.length,
    memoryGb: totalmem() / 1024 ** 3,
    freeMemoryGb: freemem() / 1024 ** 3,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    date: new Date().toISOString(),
  };
}

/** 1, 5 and 15 minute load averages, formatted. */
export function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(" / ");
}
