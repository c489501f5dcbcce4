import { ConfigError, InputError } from "../functions/core/errors.ts";

/** Exit codes of the CLI: scripts can tell bad input from a failed run. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;
/** The run finished but left events in spill/ or rejected/ (report status `partial`). */
export const EXIT_PARTIAL = 3;

/** A run that ended `partial`: nothing is lost, but not everything is in Loki yet. */
export class RunPartialError extends Error {
  override name = "RunPartialError";
}

/** Turns any error into one line for the user and the exit code that goes with it. */
export function describeFailure(error: unknown): { line: string; exitCode: number } {
  if (error instanceof RunPartialError) return { line: error.message, exitCode: EXIT_PARTIAL };
  if (error instanceof InputError || error instanceof ConfigError) {
    return { line: `error: ${error.message}`, exitCode: EXIT_BAD_INPUT };
  }
  const name = error instanceof Error ? error.name : "";
  const message = error instanceof Error ? error.message : String(error);
  if (name === "CredentialsProviderError" || /Could not load credentials/i.test(message)) {
    return {
      line: "error: no AWS credentials found: set AWS_PROFILE (or pass --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
      exitCode: EXIT_BAD_INPUT,
    };
  }
  if (name === "ResourceNotFoundException") return { line: `error: ${message}`, exitCode: EXIT_BAD_INPUT };
  return { line: `error: ${message}`, exitCode: EXIT_FAILED };
}
