import type { LabelPairs } from "./labels.ts";

/** A parser stage's result: the extracted labels, or Loki's error label and details. */
export type ParseResult = { labels: LabelPairs } | { error: string; details: string };

/** Loki's `sanitizeLabelKey`: characters outside [a-zA-Z0-9_] become `_`, a leading digit gets `_`. */
export function sanitizeLabelKey(key: string): string {
  const sanitized = key.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^\d/.test(sanitized) ? `_${sanitized}` : sanitized;
}

/** The error jsonparser (used by Loki's `| json`) gives for a line that is not a JSON object. */
const JSON_OBJECT_ERROR = "Value looks like object, but can't find closing '}' symbol";

class JsonScanner {
  position = 0;
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  skipSpace(): void {
    while (/\s/.test(this.text[this.position] ?? "")) this.position++;
  }
  expect(character: string): void {
    this.skipSpace();
    if (this.text[this.position] !== character) throw new SyntaxError(JSON_OBJECT_ERROR);
    this.position++;
  }
  peek(): string | undefined {
    this.skipSpace();
    return this.text[this.position];
  }
  /** The literal text of the next string, number, true, false or null. */
  literal(): string {
    this.skipSpace();
    const match = /^(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(
      this.text.slice(this.position),
    );
    if (!match) throw new SyntaxError(JSON_OBJECT_ERROR);
    this.position += match[0].length;
    return match[0];
  }
}

/** Reads a JSON object into `into`, nested keys joined with `_`; arrays are skipped like Loki does. */
function readObject(scanner: JsonScanner, prefix: string, into: LabelPairs): void {
  scanner.expect("{");
  if (scanner.peek() === "}") {
    scanner.position++;
    return;
  }
  for (;;) {
    const key = sanitizeLabelKey(prefix + (JSON.parse(scanner.literal()) as string));
    scanner.expect(":");
    readValue(scanner, key, into);
    if (scanner.peek() === ",") scanner.position++;
    else break;
  }
  scanner.expect("}");
}

function readValue(scanner: JsonScanner, key: string, into: LabelPairs): void {
  const next = scanner.peek();
  if (next === "{") {
    readObject(scanner, `${key}_`, into);
    return;
  }
  if (next === "[") {
    readArray(scanner);
    return;
  }
  const literal = scanner.literal();
  if (literal === "null") return;
  into.push([key, literal.startsWith('"') ? (JSON.parse(literal) as string) : literal]);
}

function readArray(scanner: JsonScanner): void {
  scanner.expect("[");
  if (scanner.peek() === "]") {
    scanner.position++;
    return;
  }
  do {
    if (scanner.peek() === ",") scanner.position++;
    readValue(scanner, "", []);
  } while (scanner.peek() === ",");
  scanner.expect("]");
}

/** `| json` without parameters: every field of the line's JSON object as a label, numbers as written. */
export function parseJsonLine(line: string): ParseResult {
  const labels: LabelPairs = [];
  try {
    const scanner = new JsonScanner(line);
    readObject(scanner, "", labels);
  } catch {
    return { error: "JSONParserErr", details: JSON_OBJECT_ERROR };
  }
  return { labels };
}

/** `| logfmt` without parameters: `key=value` and `key="quoted value"` pairs as labels. */
export function parseLogfmtLine(line: string): ParseResult {
  const labels: LabelPairs = [];
  const pair = /([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|\S*))?/g;
  for (const match of line.matchAll(pair)) {
    const raw = match[2] ?? "";
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        return { error: "LogfmtParserErr", details: `logfmt syntax error: invalid quoted value ${raw}` };
      }
    }
    labels.push([sanitizeLabelKey(match[1] as string), value]);
  }
  return { labels };
}
