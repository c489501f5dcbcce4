import { parser } from "@grafana/lezer-logql";
import { HttpError } from "./errors.ts";
import { unquoteLogqlString } from "./labels.ts";

/** A node of the lezer syntax tree (typed from the parser, @lezer/common is not a direct dependency). */
export type SyntaxNode = ReturnType<typeof parser.parse>["topNode"];

export type MatchOperator = "=" | "!=" | "=~" | "!~";

export interface LabelMatcher {
  name: string;
  operator: MatchOperator;
  value: string;
  /** Whether a label value matches (a missing label counts as ""). */
  matches(value: string): boolean;
}

export type NumberOperator = ">" | ">=" | "<" | "<=" | "==" | "!=";

/**
 * A pipeline stage this server evaluates: line filters, label filters, numeric label filters and
 * the `json` / `logfmt` parsers without parameters.
 */
export type PipelineStage =
  | { kind: "line"; operator: "|=" | "!=" | "|~" | "!~"; values: string[]; regexes: RegExp[] }
  | { kind: "label"; matcher: LabelMatcher }
  | { kind: "number"; name: string; operator: NumberOperator; value: number }
  | { kind: "parser"; parser: "json" | "logfmt" };

export interface LogQuery {
  matchers: LabelMatcher[];
  pipeline: PipelineStage[];
}

export function queryError(message: string): HttpError {
  return new HttpError(400, message);
}

/** Go RE2 → JavaScript: a leading `(?i)` becomes the `i` flag; RE2 and JS agree on the rest we need. */
function compileRegex(source: string, anchored: boolean): RegExp {
  let flags = "s";
  let body = source;
  if (body.startsWith("(?i)")) {
    flags += "i";
    body = body.slice(4);
  }
  try {
    return new RegExp(anchored ? `^(?:${body})$` : body, flags);
  } catch (error) {
    throw queryError(`parse error : error parsing regexp: ${(error as Error).message}`);
  }
}

export function makeMatcher(name: string, operator: MatchOperator, value: string): LabelMatcher {
  if (operator === "=") return { name, operator, value, matches: (v) => v === value };
  if (operator === "!=") return { name, operator, value, matches: (v) => v !== value };
  const regex = compileRegex(value, true);
  if (operator === "=~") return { name, operator, value, matches: (v) => regex.test(v) };
  return { name, operator, value, matches: (v) => !regex.test(v) };
}

export function text(query: string, node: SyntaxNode): string {
  return query.slice(node.from, node.to);
}

function readMatcher(query: string, node: SyntaxNode): LabelMatcher {
  const name = node.getChild("Identifier");
  const value = node.getChild("String");
  const operatorNode =
    node.getChild("Eq") ?? node.getChild("Neq") ?? node.getChild("Re") ?? node.getChild("Nre");
  if (!name || !value || !operatorNode)
    throw queryError(`parse error : unsupported matcher ${text(query, node)}`);
  return makeMatcher(
    text(query, name),
    text(query, operatorNode) as MatchOperator,
    unquoteLogqlString(text(query, value)),
  );
}

export function collect(node: SyntaxNode, name: string, into: SyntaxNode[] = []): SyntaxNode[] {
  for (let child = node.firstChild; child; child = child.nextSibling) {
    if (child.name === name) into.push(child);
    else collect(child, name, into);
  }
  return into;
}

/** How Loki's yacc parser names the token it could not use. */
function tokenName(query: string, position: number): string {
  const rest = query.slice(position);
  if (/^[a-zA-Z_]/.test(rest)) return "IDENTIFIER";
  if (/^\d/.test(rest)) return "NUMBER";
  if (/^["`]/.test(rest)) return "STRING";
  return rest[0] ?? "$end";
}

function syntaxErrorMessage(query: string, position: number): string {
  // Loki's yacc parser reports the token it could not use; at the end of input that is "$end".
  const column = position + 1;
  if (position >= query.trimEnd().length) {
    const open = (query.match(/\{/g) ?? []).length > (query.match(/\}/g) ?? []).length;
    return `parse error at line 1, col ${column}: syntax error: unexpected $end${open ? ", expecting } or ," : ""}`;
  }
  return `parse error at line 1, col ${column}: syntax error: unexpected ${tokenName(query, position)}`;
}

/**
 * Loki's lexer reads `[...]` as one duration token with Go's time.ParseDuration, so a bad unit is
 * a lexer error reported at the `[` (and, by a quirk of its error position, on line 0).
 */
function durationErrorMessage(query: string, range: SyntaxNode): string | undefined {
  const inside = query
    .slice(range.from + 1, range.to)
    .replace(/\]$/, "")
    .trim();
  const unit = /^(?:\d+(?:\.\d*)?|\.\d+)([a-zA-Zµ]*)/.exec(inside);
  if (!unit) return undefined;
  const where = `parse error at line 0, col ${range.from + 1}`;
  if (unit[1] === "") return `${where}: missing unit in duration ${JSON.stringify(inside)}`;
  if (!["ns", "us", "µs", "ms", "s", "m", "h", "d", "w", "y"].includes(unit[1] as string)) {
    return `${where}: unknown unit ${JSON.stringify(unit[1])} in duration ${JSON.stringify(inside)}`;
  }
  return undefined;
}

/** Parses a query with the lezer LogQL grammar; a syntax error becomes Loki's 400 message. */
export function parseSyntax(query: string): SyntaxNode {
  const tree = parser.parse(query);
  let error: SyntaxNode | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError && error === undefined) error = node.node;
      return error === undefined;
    },
  });
  if (error) {
    const range = error.parent?.name === "Range" ? error.parent : undefined;
    const durationMessage = range ? durationErrorMessage(query, range) : undefined;
    throw queryError(durationMessage ?? syntaxErrorMessage(query, error.from));
  }
  return tree.topNode;
}

function readLineFilter(query: string, node: SyntaxNode): PipelineStage {
  const filter = node.getChild("Filter");
  const operator = (filter ? text(query, filter) : "|=") as "|=" | "!=" | "|~" | "!~";
  if (!["|=", "!=", "|~", "!~"].includes(operator)) {
    throw queryError(`not supported by this test server: line filter ${operator}`);
  }
  if (node.getChild("FilterOp") || collect(node, "Ip").length > 0) {
    throw queryError("not supported by this test server: ip() line filters");
  }
  const values = collect(node, "String").map((s) => unquoteLogqlString(text(query, s)));
  const regexes = operator === "|~" || operator === "!~" ? values.map((v) => compileRegex(v, false)) : [];
  return { kind: "line", operator, values, regexes };
}

function readNumberFilter(query: string, node: SyntaxNode): PipelineStage {
  const name = node.getChild("Identifier");
  const operator = ["Gtr", "Gte", "Lss", "Lte", "Eql", "Neq"].map((n) => node.getChild(n)).find(Boolean);
  const literal = node.getChild("LiteralExpr");
  if (!name || !operator || !literal) {
    throw queryError(`not supported by this test server: label filter ${text(query, node)}`);
  }
  return {
    kind: "number",
    name: text(query, name),
    operator: text(query, operator) as NumberOperator,
    value: Number(text(query, literal)),
  };
}

export function readLabelFilter(query: string, node: SyntaxNode, stage: SyntaxNode): PipelineStage {
  const only = node.firstChild;
  if (only && !only.nextSibling) {
    if (only.name === "Matcher") return { kind: "label", matcher: readMatcher(query, only) };
    if (only.name === "NumberFilter") return readNumberFilter(query, only);
  }
  throw queryError(`not supported by this test server: pipeline stage ${text(query, stage)}`);
}

/** The stages of a PipelineExpr (or of the filters after an unwrap), in query order. */
export function readPipeline(query: string, node: SyntaxNode | null): PipelineStage[] {
  const pipeline: PipelineStage[] = [];
  if (!node) return pipeline;
  for (const stage of collect(node, "PipelineStage")) {
    const lineFilters = stage.getChild("LineFilters");
    const labelFilter = stage.getChild("LabelFilter");
    if (lineFilters) {
      for (const filter of collect(lineFilters, "LineFilter")) pipeline.push(readLineFilter(query, filter));
    } else if (labelFilter) {
      pipeline.push(readLabelFilter(query, labelFilter, stage));
    } else if (stage.getChild("LabelParser")?.getChild("Json")) {
      pipeline.push({ kind: "parser", parser: "json" });
    } else if (stage.getChild("LogfmtParser") && text(query, stage).replace(/\s+/g, "") === "|logfmt") {
      pipeline.push({ kind: "parser", parser: "logfmt" });
    } else {
      throw queryError(`not supported by this test server: pipeline stage ${text(query, stage)}`);
    }
  }
  return pipeline;
}

/** The stream selector and pipeline of a LogExpr or LogRangeExpr node. */
export function readLogSelector(query: string, node: SyntaxNode): LogQuery {
  const selector = node.getChild("Selector");
  if (!selector) throw queryError(syntaxErrorMessage(query, 0));
  const matchers = collect(selector, "Matcher").map((m) => readMatcher(query, m));
  if (!matchers.some((m) => (m.operator === "=" || m.operator === "=~") && !m.matches(""))) {
    throw queryError(
      "parse error : queries require at least one regexp or equality matcher that does not have an " +
        'empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will',
    );
  }
  return { matchers, pipeline: readPipeline(query, node.getChild("PipelineExpr")) };
}

/**
 * Parses a LogQL log query with the lezer LogQL grammar: a stream selector, then line filters
 * (`|=`, `!=`, `|~`, `!~`), label filters and numeric label filters on stream labels / structured
 * metadata / parsed labels, `| json` and `| logfmt`. Other parsers and formatters are refused with
 * a 400 saying so; a metric query too (see metric-syntax.ts).
 */
export function parseLogQuery(query: string): LogQuery {
  const logExpr = parseSyntax(query).getChild("Expr")?.getChild("LogExpr");
  if (!logExpr) throw queryError("not supported by this test server: only log queries (no metric queries)");
  return readLogSelector(query, logExpr);
}

/** Whether a line passes the line filters of a pipeline. */
export function lineFilterPasses(stage: Extract<PipelineStage, { kind: "line" }>, line: string): boolean {
  switch (stage.operator) {
    case "|=":
      return stage.values.some((v) => line.includes(v));
    case "!=":
      return !stage.values.some((v) => line.includes(v));
    case "|~":
      return stage.regexes.some((r) => r.test(line));
    case "!~":
      return !stage.regexes.some((r) => r.test(line));
  }
}
