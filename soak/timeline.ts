import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { AppliedFault } from "./faults.ts";

export type Flow = "pushed" | "spilled" | "drained";

/** Per-second counts of what the soak saw, sampled as it ran. */
export class Timeline {
  readonly #startedAt: number;
  readonly #flows = new Map<string, number>();
  readonly backlog: { second: number; chunks: number }[] = [];
  readonly rss: { second: number; mb: number }[] = [];

  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  second(at = Date.now()): number {
    return Math.floor((at - this.#startedAt) / 1000);
  }

  add(flow: Flow, events: number): void {
    if (events <= 0) return;
    const key = `${this.second()}\u0000${flow}`;
    this.#flows.set(key, (this.#flows.get(key) ?? 0) + events);
  }

  sampleRss(): void {
    this.rss.push({ second: this.second(), mb: process.memoryUsage().rss / 1_048_576 });
  }

  peakRssMb(): number {
    return Math.max(0, ...this.rss.map((sample) => sample.mb));
  }

  flows(): { second: number; flow: Flow; events: number }[] {
    return [...this.#flows].map(([key, events]) => {
      const [second, flow] = key.split("\u0000") as [string, Flow];
      return { second: Number(second), flow, events };
    });
  }
}

/** The timeline as SVG, drawn by Vega-Lite and rendered by Vega in Node (no browser). */
export async function timelineSvg(timeline: Timeline, faults: AppliedFault[]): Promise<string> {
  const windows = faults.map((fault) => ({
    fault: fault.kind,
    start: fault.startMs / 1000,
    end: Math.max(fault.endMs, fault.startMs + 1000) / 1000,
  }));
  const shaded = {
    data: { values: windows },
    mark: { type: "rect" as const, opacity: 0.18 },
    encoding: {
      x: { field: "start", type: "quantitative" as const, title: "seconds" },
      x2: { field: "end" },
      color: { field: "fault", type: "nominal" as const, title: "fault" },
    },
  };
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "loki-shipper soak",
    vconcat: [
      {
        width: 900,
        height: 220,
        title: "events per second",
        layer: [
          shaded,
          {
            data: { values: timeline.flows() },
            mark: { type: "line", interpolate: "step-after", strokeWidth: 1.2 },
            encoding: {
              x: { field: "second", type: "quantitative" },
              y: { field: "events", type: "quantitative", title: "events / s" },
              stroke: { field: "flow", type: "nominal", title: "flow" },
            },
          },
        ],
        resolve: { scale: { color: "independent" } },
      },
      {
        width: 900,
        height: 120,
        title: "spill backlog (chunks in spill/)",
        layer: [
          shaded,
          {
            data: { values: timeline.backlog },
            mark: { type: "area", interpolate: "step-after", opacity: 0.7 },
            encoding: {
              x: { field: "second", type: "quantitative" },
              y: { field: "chunks", type: "quantitative", title: "chunks" },
            },
          },
        ],
      },
      {
        width: 900,
        height: 100,
        title: "RSS (MB)",
        data: { values: timeline.rss },
        mark: "line",
        encoding: {
          x: { field: "second", type: "quantitative", title: "seconds" },
          y: { field: "mb", type: "quantitative", title: "MB" },
        },
      },
    ],
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
