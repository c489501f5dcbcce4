import type { LabelPairs } from "./labels.ts";
import { detectLevel } from "./level-detection.ts";
import { lineFilterPasses, type NumberOperator, type PipelineStage } from "./logql.ts";
import { parseJsonLine, parseLogfmtLine } from "./parsers.ts";
import type { StoredEntry, Stream } from "./store.ts";

function byName(a: [string, string], b: [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Structured metadata of an entry as queries see it: sent metadata plus Loki's `detected_level`. */
export function metadataOf(stream: Stream, entry: StoredEntry, discoverLogLevels: boolean): LabelPairs {
  const metadata: LabelPairs = entry.metadata ? [...entry.metadata] : [];
  if (discoverLogLevels && !metadata.some(([name]) => name === "detected_level")) {
    metadata.push(["detected_level", detectLevel(stream.labels, entry.metadata, entry.line)]);
    metadata.sort(byName);
  }
  return metadata;
}

/**
 * The labels of one entry while it goes through a pipeline, like Loki's `LabelsBuilder`: stream
 * labels, structured metadata (computed only when a stage or the result needs it) and the
 * `__error__` / `__error_details__` a stage may set.
 */
export class EntryLabels {
  readonly stream: Stream;
  readonly entry: StoredEntry;
  readonly #discoverLogLevels: boolean;
  #metadata: LabelPairs | undefined;
  #errors: LabelPairs = [];
  /** Labels extracted by `| json` / `| logfmt`. */
  #parsed: LabelPairs = [];
  /** Labels the result drops (an unwrapped label). */
  readonly dropped = new Set<string>();

  constructor(stream: Stream, entry: StoredEntry, discoverLogLevels: boolean) {
    this.stream = stream;
    this.entry = entry;
    this.#discoverLogLevels = discoverLogLevels;
  }

  get metadata(): LabelPairs {
    this.#metadata ??= metadataOf(this.stream, this.entry, this.#discoverLogLevels);
    return this.#metadata;
  }

  get hasError(): boolean {
    return this.#errors.length > 0;
  }

  get(name: string): string | undefined {
    const found =
      this.#errors.find(([n]) => n === name) ??
      this.#parsed.find(([n]) => n === name) ??
      this.metadata.find(([n]) => n === name) ??
      this.stream.labels.find(([n]) => n === name);
    return found?.[1];
  }

  /** Keeps the first error, as a stage after a failed one cannot fail again in Loki. */
  setError(error: string, details: string): void {
    if (this.hasError) return;
    this.#errors = [
      ["__error__", error],
      ["__error_details__", details],
    ];
  }

  /**
   * Adds parsed labels; a name that is already a stream label or metadata gets the suffix
   * `_extracted`, and a later parser overwrites an earlier one's value, as in Loki.
   */
  addParsed(pairs: LabelPairs): void {
    for (const [name, value] of pairs) {
      const taken = this.stream.labels.some(([n]) => n === name) || this.metadata.some(([n]) => n === name);
      const key = taken ? `${name}_extracted` : name;
      this.#parsed = this.#parsed.filter(([n]) => n !== key);
      this.#parsed.push([key, value]);
    }
  }

  /** Labels extracted by parsers (Loki's "parsed" category). */
  get parsed(): LabelPairs {
    return this.#parsed;
  }

  /** Stream labels, structured metadata, parsed and error labels, sorted by name (a query result's labels). */
  all(): LabelPairs {
    const pairs = [...this.stream.labels, ...this.metadata, ...this.#parsed, ...this.#errors].filter(
      ([name]) => !this.dropped.has(name),
    );
    return pairs.sort(byName);
  }
}

/**
 * Go's `strconv.ParseFloat` for the decimal forms labels hold (also inf / nan), or the error text
 * Loki puts into `__error_details__`.
 */
export function parseGoFloat(text: string): number | { error: string } {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(text);
  if (special) {
    if ((special[2] as string).toLowerCase() === "nan") return Number.NaN;
    return special[1] === "-" ? -Infinity : Infinity;
  }
  return { error: `strconv.ParseFloat: parsing ${JSON.stringify(text)}: invalid syntax` };
}

function compare(operator: NumberOperator, left: number, right: number): boolean {
  switch (operator) {
    case ">":
      return left > right;
    case ">=":
      return left >= right;
    case "<":
      return left < right;
    case "<=":
      return left <= right;
    case "==":
      return left === right;
    case "!=":
      return left !== right;
  }
}

/** Loki's `NumericLabelFilter`: a missing label drops the entry, an unparsable one marks it. */
function numberFilterPasses(stage: Extract<PipelineStage, { kind: "number" }>, labels: EntryLabels): boolean {
  if (labels.hasError) return true; // only string matchers on __error__ can filter it out
  const value = labels.get(stage.name);
  if (value === undefined) return false;
  const parsed = parseGoFloat(value);
  if (typeof parsed !== "number") {
    labels.setError("LabelFilterErr", parsed.error);
    return true;
  }
  return compare(stage.operator, parsed, stage.value);
}

function runParser(parser: "json" | "logfmt", labels: EntryLabels): void {
  const result = parser === "json" ? parseJsonLine(labels.entry.line) : parseLogfmtLine(labels.entry.line);
  if ("error" in result) labels.setError(result.error, result.details);
  else labels.addParsed(result.labels);
}

/** Runs the stages in order; false as soon as one drops the entry. */
export function runPipeline(stages: readonly PipelineStage[], labels: EntryLabels): boolean {
  for (const stage of stages) {
    if (stage.kind === "parser") {
      runParser(stage.parser, labels);
    } else if (stage.kind === "line") {
      if (!lineFilterPasses(stage, labels.entry.line)) return false;
    } else if (stage.kind === "label") {
      if (!stage.matcher.matches(labels.get(stage.matcher.name) ?? "")) return false;
    } else if (!numberFilterPasses(stage, labels)) {
      return false;
    }
  }
  return true;
}
