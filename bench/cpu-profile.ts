import { relative } from "node:path";
import { fmt, markdownTable } from "./table.ts";

/** Self time per function of a V8 CPU profile. */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileFrame {
  /** `name (file:line)`, files relative to the project. */
  frame: string;
  selfPercent: number;
  selfMs: number;
}

function summarise(profile: CpuProfile, root: string, limit: number): ProfileFrame[] {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node);
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    const node = nodes.get(id);
    if (!node) return;
    const frame = describe(node, root, parents.get(node.id));
    // Idle time, and the profiler's own session when profiling in-process, are not the code's cost.
    if (frame === "(idle)" || node.callFrame.url === "node:inspector") return;
    totalUs += delta;
    selfUs.set(frame, (selfUs.get(frame) ?? 0) + delta);
  });
  return [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([frame, us]) => ({
      frame,
      selfMs: us / 1000,
      selfPercent: totalUs > 0 ? (100 * us) / totalUs : 0,
    }));
}

function describe(node: ProfileNode, root: string, parent?: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || "(anonymous)";
  if (!url) {
    // A native function (e.g. zlib's writeSync) says little by its name alone: name its JS caller.
    const caller = parent?.callFrame.functionName;
    return name.startsWith("(") || name.startsWith("RegExp:") || !caller
      ? name
      : `${name} (native, called by ${caller})`;
  }
  const path = url.startsWith("file://") ? relative(root, new URL(url).pathname) : url;
  return `${name} (${path}:${lineNumber + 1})`;
}

/** Profiles `work` in this process with the V8 inspector and returns the top frames by self time. */
export async function profileInProcess(
  work: () => Promise<unknown>,
  root: string,
  limit = 12,
): Promise<ProfileFrame[]> {
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  try {
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
    await work();
    const { profile } = await session.post("Profiler.stop");
    return summarise(profile as unknown as CpuProfile, root, limit);
  } finally {
    session.disconnect();
  }
}

/** Frames as a Markdown table, heaviest first. */
export function profileTable(frames: ProfileFrame[]): string {
  return markdownTable(
    ["self %", "self ms", "frame"],
    frames.map((frame) => [fmt.fixed(frame.selfPercent), fmt.int(frame.selfMs), `\`${frame.frame}\``]),
  );
}
