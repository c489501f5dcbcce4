import { spawnSync } from "node:child_process";

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; its output is captured, and printed too when `show` is set. */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; show?: boolean } = {},
): RunResult {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw new Error(`${command} could not be started: ${result.error.message}`);
  const outcome = { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
  if (options.show) process.stdout.write(outcome.stdout + outcome.stderr);
  return outcome;
}

/** Like run, but a non-zero exit is an error that carries the command's output. */
export function runOrFail(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; show?: boolean } = {},
): RunResult {
  const result = run(command, args, options);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.status}:\n${result.stdout}${result.stderr}`.trimEnd(),
    );
  }
  return result;
}
