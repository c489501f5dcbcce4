import { InputError } from "../errors.ts";

/**
 * A tag selector picks log groups by their AWS tags with LogQL-style matchers, so that the same
 * words select log groups and, once shipped, their streams in Loki:
 * `runtime=python,owner=~"team-.*"` or `{runtime="python", name!~"test.*"}`.
 * As in Prometheus and Loki, a missing tag reads as the empty string and regular expressions must
 * match the whole value.
 */
export type TagMatchOperator = "=" | "!=" | "=~" | "!~";

export interface TagMatcher {
  key: string;
  operator: TagMatchOperator;
  value: string;
}

// key, operator, then a double-quoted value (with \" escapes) or a bare value up to the next comma.
const MATCHER_PATTERN = /^\s*([^\s=!~,"{}]+)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^,]*?)\s*(?:,|$)/;

/** Parses a tag selector; throws {@link InputError} naming the part that cannot be read. */
export function parseTagSelector(selector: string): TagMatcher[] {
  let rest = selector.trim();
  if (rest.startsWith("{") && rest.endsWith("}")) rest = rest.slice(1, -1).trim();
  if (rest === "")
    throw new InputError(`Tag selector is empty: give at least one matcher such as runtime=python`);
  const matchers: TagMatcher[] = [];
  while (rest.length > 0) {
    const found = MATCHER_PATTERN.exec(rest);
    if (!found) {
      throw new InputError(
        `Cannot read tag selector ${JSON.stringify(selector)} at ${JSON.stringify(rest.trim())}: expected key=value, key!=value, key=~regex or key!~regex separated by commas`,
      );
    }
    const [whole, key = "", operator = "=", rawValue = ""] = found;
    const value = rawValue.startsWith('"') ? unquote(rawValue, selector) : rawValue;
    if (operator === "=~" || operator === "!~") compileFullMatch(value, selector);
    matchers.push({ key, operator: operator as TagMatchOperator, value });
    rest = rest.slice(whole.length);
  }
  return matchers;
}

/** True when every matcher accepts the tags (a missing tag is the empty string). */
export function matchesTagSelector(tags: Record<string, string>, matchers: readonly TagMatcher[]): boolean {
  return matchers.every((matcher) => {
    const tagValue = tags[matcher.key] ?? "";
    switch (matcher.operator) {
      case "=":
        return tagValue === matcher.value;
      case "!=":
        return tagValue !== matcher.value;
      case "=~":
        return compileFullMatch(matcher.value).test(tagValue);
      default:
        return !compileFullMatch(matcher.value).test(tagValue);
    }
  });
}

/** Writes matchers back in the braces form, e.g. for plans and run reports. */
export function formatTagSelector(matchers: readonly TagMatcher[]): string {
  return `{${matchers.map((m) => `${m.key}${m.operator}${JSON.stringify(m.value)}`).join(", ")}}`;
}

function unquote(quoted: string, selector: string): string {
  try {
    return JSON.parse(quoted) as string;
  } catch (error) {
    throw new InputError(
      `Cannot read the quoted value ${quoted} in tag selector ${JSON.stringify(selector)}`,
      {
        cause: error,
      },
    );
  }
}

const compiled = new Map<string, RegExp>();

function compileFullMatch(pattern: string, selector?: string): RegExp {
  let regex = compiled.get(pattern);
  if (regex) return regex;
  try {
    regex = new RegExp(`^(?:${pattern})$`);
  } catch (error) {
    throw new InputError(
      `Invalid regular expression ${JSON.stringify(pattern)} in tag selector ${JSON.stringify(selector ?? pattern)}`,
      { cause: error },
    );
  }
  compiled.set(pattern, regex);
  return regex;
}
