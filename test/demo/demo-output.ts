import { execFile } from "node:child_process";
import { expect } from "vitest";

/** `npm run demo -- --once …` as a user starts it: a child process with its own moto. */

export interface DemoResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runDemo(args: string[], env: Record<string, string> = {}): Promise<DemoResult> {
  const { LOKI_USERNAME: _u, LOKI_PASSWORD: _p, LOKI_BEARER_TOKEN: _t, ...parentEnv } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["scripts/demo.ts", "--once", ...args],
      { env: { ...parentEnv, ...env }, timeout: 240_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export const QUERY = '{runtime="python", region="eu-central-1", name=~"fun.*"}';

/** What the demo printed for QUERY: the window it asked for, and the counts Loki answered. */
export interface PrintedAnswer {
  since: number;
  entries: number;
  streams: number;
  /** `name="…", time_shard="…"` and its count, for each stream line printed. */
  streamLines: [string, number][];
  /** Streams left out of the printed lines (the `... N more` line). */
  moreStreams: number;
  /** The `name="…": N entries (…)` lines. */
  perName: string[];
}

export function printedAnswer(stdout: string): PrintedAnswer {
  const lines = stdout.split("\n");
  const at = lines.indexOf(`Query: ${QUERY}`);
  expect(at, stdout).toBeGreaterThanOrEqual(0);
  const since = /^ {2}over the last \d+ h \(since (\S+)\)$/.exec(lines[at + 1] ?? "");
  const counts = /^ {2}(\d+) entries in (\d+) streams /.exec(lines[at + 2] ?? "");
  expect(since, lines[at + 1]).not.toBeNull();
  expect(counts, lines[at + 2]).not.toBeNull();
  const answer: PrintedAnswer = {
    since: Date.parse(since?.[1] ?? ""),
    entries: Number(counts?.[1]),
    streams: Number(counts?.[2]),
    streamLines: [],
    moreStreams: 0,
    perName: [],
  };
  for (const line of lines.slice(at + 3)) {
    const stream = /^ {4}\{(.+)\}: (\d+)$/.exec(line);
    const more = /^ {4}\.\.\. (\d+) more$/.exec(line);
    if (stream) answer.streamLines.push([stream[1] ?? "", Number(stream[2])]);
    else if (more) answer.moreStreams = Number(more[1]);
    else if (line.startsWith("  name=")) answer.perName.push(line.trim());
    else break;
  }
  return answer;
}

/** Each stream printed once, and as many streams as the answer's count. */
export function expectEachStreamOnce(answer: PrintedAnswer): void {
  const keys = answer.streamLines.map(([key]) => key);
  expect(new Set(keys).size).toBe(keys.length);
  expect(keys.length + answer.moreStreams).toBe(answer.streams);
}
