import { readFileSync } from "node:fs";
import { relative } from "node:path";

/** Self time per function of a V8 `.cpuprofile` (as written by `node --cpu-prof`). */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
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

export function topFrames(profilePath: string, root: string, limit = 12): ProfileFrame[] {
  const profile = JSON.parse(readFileSync(profilePath, "utf8")) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    const node = nodes.get(id);
    if (!node) return;
    const frame = describe(node, root);
    if (frame === "(idle)") return;
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

function describe(node: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || "(anonymous)";
  if (!url) return name;
  const path = url.startsWith("file://") ? relative(root, new URL(url).pathname) : url;
  return `${name} (${path}:${lineNumber + 1})`;
}
