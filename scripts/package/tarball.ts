import { runOrFail } from "./run.ts";

export interface PackedPackage {
  tarball: string;
  /** Bytes of the .tgz. */
  size: number;
  unpackedSize: number;
  files: string[];
}

/** What users download must stay small: the tarball's size limit. */
export const MAX_TARBALL_BYTES = 5 * 1024 * 1024;

/** `npm pack` of the built package into `destination` (dist/ must be built already). */
export function pack(root: string, destination: string): PackedPackage {
  const { stdout } = runOrFail(
    "npm",
    ["pack", "--json", "--ignore-scripts", "--pack-destination", destination],
    {
      cwd: root,
    },
  );
  const [packed] = JSON.parse(stdout) as {
    filename: string;
    size: number;
    unpackedSize: number;
    files: { path: string }[];
  }[];
  if (!packed) throw new Error("npm pack --json answered nothing");
  return {
    tarball: `${destination}/${packed.filename}`,
    size: packed.size,
    unpackedSize: packed.unpackedSize,
    files: packed.files.map((file) => file.path),
  };
}

/** Files that must never reach users: tests, benchmark output, TypeScript sources without their JavaScript. */
export function unwantedFiles(files: string[]): string[] {
  return files.filter(
    (path) =>
      /(^|\/)(test|tests|bench|\.bench-tmp|cdk\.out|coverage)\//.test(path) ||
      /\.test\.[cm]?[jt]s$/.test(path) ||
      /^BENCHMARKS\.md$/.test(path) ||
      (/\.[cm]?ts$/.test(path) && !/\.d\.[cm]?ts$/.test(path)),
  );
}

/** Problems with the packed contents, one line each (empty when all is well). */
export function packageProblems(packed: PackedPackage): string[] {
  const problems = unwantedFiles(packed.files).map((path) => `must not be packed: ${path}`);
  if (packed.size > MAX_TARBALL_BYTES) {
    problems.push(`the tarball has ${packed.size} bytes, more than ${MAX_TARBALL_BYTES}`);
  }
  const required = [
    "bin/loki-shipper.mjs",
    "dist/infra/index.js",
    "dist/infra/index.d.ts",
    // The Grafana dashboard users import (README: The Grafana dashboard).
    "dashboards/loki-shipper.json",
  ];
  for (const path of required) {
    if (!packed.files.includes(path)) problems.push(`missing: ${path}`);
  }
  return problems;
}
