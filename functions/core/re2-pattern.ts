import { RE2JS, RE2JSException } from "re2js";

/**
 * Compiles a user's regular expression with RE2, which runs in time linear in the input: RE2 has no
 * backreferences or lookarounds, which are what makes backtracking exponential. A pattern RE2
 * refuses is reported through `problem` as "`subject` is not a valid RE2 regular expression", with
 * RE2's reason, and gives undefined.
 */
export function compileRe2(
  source: string,
  subject: string,
  problem: (text: string) => void,
): RE2JS | undefined {
  try {
    return RE2JS.compile(source);
  } catch (error) {
    if (!(error instanceof RE2JSException)) throw error;
    problem(
      `${subject} is not a valid RE2 regular expression (${error.message}); see https://github.com/google/re2/wiki/Syntax`,
    );
    return undefined;
  }
}
