import { parser } from "@grafana/lezer-logql";
import { HttpError } from "./errors.ts";

/** Labels of a stream as [name, value] pairs sorted by name (Prometheus `labels.Labels` order). */
export type LabelPairs = Array<[string, string]>;

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Go `strconv.Quote` for the printable strings labels normally hold. */
export function quoteValue(value: string): string {
  return JSON.stringify(value);
}

/** Prometheus `labels.Labels.String()`: `{a="1", b="2"}`. */
export function formatLabels(pairs: LabelPairs): string {
  let text = "{";
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i] as [string, string];
    if (i > 0) text += ", ";
    text += `${pair[0]}=${quoteValue(pair[1])}`;
  }
  return `${text}}`;
}

function labelParseError(column: number, character: string): HttpError {
  return new HttpError(
    400,
    `couldn't parse labels: 1:${column}: parse error: unexpected character inside braces: '${character}'\n`,
  );
}

/**
 * Labels from a JSON push (`"stream": {...}`). Loki renders the object as a label string with
 * sorted keys and parses that with its LogQL parser, so an invalid name is reported with its
 * column in that string, and fails the whole request.
 */
export function labelsFromObject(object: Record<string, string>): LabelPairs {
  const pairs = Object.entries(object).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let column = 2; // after "{"
  for (const [name, value] of pairs) {
    if (!LABEL_NAME.test(name)) {
      const bad = /^[a-zA-Z_]/.test(name) ? (/[^a-zA-Z0-9_]/.exec(name)?.index ?? 0) : 0;
      throw labelParseError(column + bad, name[bad] ?? "=");
    }
    column += name.length + 1 + quoteValue(value).length + 2;
  }
  return pairs;
}

/** Unquotes a LogQL string literal: "..." with Go escapes, or `...` raw. */
export function unquoteLogqlString(literal: string): string {
  if (literal.startsWith("`")) return literal.slice(1, -1);
  try {
    return JSON.parse(literal) as string;
  } catch {
    return literal.slice(1, -1).replace(/\\(.)/g, "$1");
  }
}

/** Column (1-based) of the character Loki's lexer stops at when the text at `from` is not a matcher. */
function lexerStop(text: string, from: number): number {
  let position = from;
  while (position < text.length && /[\s,]/.test(text[position] as string)) position++;
  if (/[a-zA-Z_]/.test(text[position] ?? "")) {
    while (position < text.length && /[a-zA-Z0-9_]/.test(text[position] as string)) position++;
    while (position < text.length && /\s/.test(text[position] as string)) position++;
  }
  return position;
}

/**
 * Labels from a label string (protobuf and legacy pushes): `{a="1", b="2"}`, parsed as a LogQL
 * stream selector with the lezer LogQL grammar; only `=` matchers are labels. Anything between
 * the matchers other than commas and spaces is reported like Loki's lexer does.
 */
export function labelsFromString(text: string): LabelPairs {
  if (/^\s*(\{\s*\})?\s*$/.test(text)) return [];
  const tree = parser.parse(text);
  const pairs: LabelPairs = [];
  let errorAt: number | undefined;
  let previousEnd = text.indexOf("{") + 1;
  let selectorEnd = -1;
  const gapIsClean = (from: number, to: number) => /^[\s,]*$/.test(text.slice(from, to));
  tree.iterate({
    enter(node) {
      if (errorAt !== undefined) return false;
      if (node.type.isError) {
        errorAt = node.from;
        return false;
      }
      if (node.name === "Selector") selectorEnd = node.to;
      if (node.name !== "Matcher") return true;
      for (let child = node.node.firstChild; child; child = child.nextSibling) {
        if (child.type.isError) {
          errorAt = child.from;
          return false;
        }
      }
      const name = node.node.getChild("Identifier");
      const value = node.node.getChild("String");
      if (!gapIsClean(previousEnd, node.from) || !name || !value || !node.node.getChild("Eq")) {
        errorAt = lexerStop(text, previousEnd);
        return false;
      }
      pairs.push([text.slice(name.from, name.to), unquoteLogqlString(text.slice(value.from, value.to))]);
      previousEnd = node.to;
      return false;
    },
  });
  if (errorAt === undefined && previousEnd <= 0) errorAt = lexerStop(text, 0);
  if (errorAt === undefined && !/^\s*,?\s*\}\s*$/.test(text.slice(previousEnd, selectorEnd))) {
    errorAt = lexerStop(text, previousEnd);
  }
  if (errorAt === undefined && selectorEnd !== text.trimEnd().length) errorAt = selectorEnd;
  if (errorAt !== undefined) throw labelParseError(errorAt + 1, text[errorAt] ?? "");
  const sorted = pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const deduplicated: LabelPairs = [];
  for (const pair of sorted) {
    if (deduplicated.at(-1)?.[0] !== pair[0]) deduplicated.push(pair);
  }
  return deduplicated;
}

/**
 * Adds `service_name` the way Loki's distributor does: an explicit service_name is kept, else the
 * first discover_service_name label present, else "unknown_service".
 */
export function withServiceName(pairs: LabelPairs, discover: readonly string[]): LabelPairs {
  if (pairs.some(([name]) => name === "service_name")) return pairs;
  let serviceName = "unknown_service";
  for (const candidate of discover) {
    const found = pairs.find(([name]) => name === candidate);
    if (found) {
      serviceName = found[1];
      break;
    }
  }
  const result = [...pairs, ["service_name", serviceName] as [string, string]];
  return result.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
