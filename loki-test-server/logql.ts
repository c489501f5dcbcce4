import { parser } from "@grafana/lezer-logql";
import { HttpError } from "./errors.ts";
import { unquoteLogqlString } from "./labels.ts";

/** A node of the lezer syntax tree (typed from the parser, @lezer/common is not a direct dependency). */
type SyntaxNode = ReturnType<typeof parser.parse>["topNode"];

export type MatchOperator = "=" | "!=" | "=~" | "!~";

export interface LabelMatcher {
  name: string;
  operator: MatchOperator;
  value: string;
  /** Whether a label value matches (a missing label counts as ""). */
  matches(value: string): boolean;
}

/** A pipeline stage this server evaluates: line filters and label filters. */
export type PipelineStage =
  | { kind: "line"; operator: "|=" | "!=" | "|~" | "!~"; values: string[]; regexes: RegExp[] }
  | { kind: "label"; matcher: LabelMatcher };

export interface LogQuery {
  matchers: LabelMatcher[];
  pipeline: PipelineStage[];
}

function queryError(message: string): HttpError {
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

function text(query: string, node: SyntaxNode): string {
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

function collect(node: SyntaxNode, name: string, into: SyntaxNode[] = []): SyntaxNode[] {
  for (let child = node.firstChild; child; child = child.nextSibling) {
    if (child.name === name) into.push(child);
    else collect(child, name, into);
  }
  return into;
}

function syntaxErrorMessage(query: string, position: number): string {
  // Loki's yacc parser reports the token it could not use; at the end of input that is "$end".
  const column = position + 1;
  if (position >= query.trimEnd().length) {
    const open = (query.match(/\{/g) ?? []).length > (query.match(/\}/g) ?? []).length;
    return `parse error at line 1, col ${column}: syntax error: unexpected $end${open ? ", expecting } or ," : ""}`;
  }
  return `parse error at line 1, col ${column}: syntax error: unexpected ${query[position]}`;
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

/**
 * Parses a LogQL log query with the lezer LogQL grammar: a stream selector, then line filters
 * (`|=`, `!=`, `|~`, `!~`) and label filters on stream labels / structured metadata. Parsers,
 * formatters and metric queries are refused with a 400 saying so.
 */
export function parseLogQuery(query: string): LogQuery {
  const tree = parser.parse(query);
  let errorAt: number | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError && errorAt === undefined) errorAt = node.from;
      return errorAt === undefined;
    },
  });
  if (errorAt !== undefined) throw queryError(syntaxErrorMessage(query, errorAt));
  const logExpr = tree.topNode.getChild("Expr")?.getChild("LogExpr");
  if (!logExpr) throw queryError("not supported by this test server: only log queries (no metric queries)");
  const selector = logExpr.getChild("Selector");
  if (!selector) throw queryError(syntaxErrorMessage(query, 0));
  const matchers = collect(selector, "Matcher").map((m) => readMatcher(query, m));
  if (!matchers.some((m) => (m.operator === "=" || m.operator === "=~") && !m.matches(""))) {
    throw queryError(
      "parse error : queries require at least one regexp or equality matcher that does not have an " +
        'empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will',
    );
  }
  const pipeline: PipelineStage[] = [];
  const pipelineExpr = logExpr.getChild("PipelineExpr");
  if (pipelineExpr) {
    for (const stage of collect(pipelineExpr, "PipelineStage")) {
      const lineFilters = stage.getChild("LineFilters");
      const labelFilter = stage.getChild("LabelFilter");
      if (lineFilters) {
        for (const filter of collect(lineFilters, "LineFilter")) pipeline.push(readLineFilter(query, filter));
      } else if (labelFilter?.firstChild?.name === "Matcher" && !labelFilter.firstChild.nextSibling) {
        pipeline.push({ kind: "label", matcher: readMatcher(query, labelFilter.firstChild) });
      } else {
        throw queryError(`not supported by this test server: pipeline stage ${text(query, stage)}`);
      }
    }
  }
  return { matchers, pipeline };
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
