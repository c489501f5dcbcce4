import { en } from "zod/locales";
import { config, type core } from "zod/mini";

/**
 * The Lambda functions validate with `zod/mini`: the same checks and messages as full zod in a
 * fraction of the bundle (a schema pulls in only the checks it uses), for a shorter cold start.
 * Unlike full zod, `zod/mini` loads no messages ("Invalid input" for every issue): every module
 * with a schema imports this one, so that issues read as full zod's do.
 */
config(en());

/** Reports a problem from inside `z.transform` (full zod's `ctx.addIssue`, which `zod/mini` lacks). */
export function addIssue(payload: core.ParsePayload, message: string): void {
  payload.issues.push({ code: "custom", message, input: payload.value });
}
