import { ConfigError } from "./errors.ts";

type Parsed<Sections extends Record<string, () => unknown>> = {
  [Name in keyof Sections]: ReturnType<Sections[Name]>;
};

/**
 * Parses every section of a function's configuration (its own variables, the Loki target, the
 * label options...) and returns them typed, or throws one ConfigError with the problems of all
 * sections: a deployment with three mistakes is told about all three at once.
 */
export function parseEverySection<Sections extends Record<string, () => unknown>>(
  sections: Sections,
): Parsed<Sections> {
  const problems: string[] = [];
  const parsed: Record<string, unknown> = {};
  for (const [name, parse] of Object.entries(sections)) {
    try {
      parsed[name] = parse();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed as Parsed<Sections>;
}
