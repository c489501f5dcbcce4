import type { core } from "zod/mini";
import { InputError } from "../errors.ts";

/** One {@link InputError} naming every field of a workflow request that is wrong, and how. */
export function requestErrorFrom(what: string, error: core.$ZodError): InputError {
  const problems = error.issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join(".") : "request";
    return issue.code === "unrecognized_keys"
      ? `${where}: unknown field(s) ${issue.keys.join(", ")}`
      : `${where}: ${issue.message}`;
  });
  return new InputError(`Invalid ${what}: ${problems.join("; ")}`);
}
