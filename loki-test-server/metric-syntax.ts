import {
  collect,
  type LogQuery,
  type PipelineStage,
  parseSyntax,
  queryError,
  readLabelFilter,
  readLogSelector,
  type SyntaxNode,
  text,
} from "./logql.ts";
import { NS_PER_MS } from "./time-format.ts";
import { parseDurationMs } from "./units.ts";

/** Range aggregations over log entries (no unwrap). */
export const LOG_RANGE_OPS = ["count_over_time", "rate", "bytes_over_time", "bytes_rate"] as const;
/** Range aggregations over unwrapped values. */
export const UNWRAP_RANGE_OPS = [
  "sum_over_time",
  "avg_over_time",
  "max_over_time",
  "min_over_time",
  "first_over_time",
  "last_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "rate",
] as const;
const RANGE_OPS = [...LOG_RANGE_OPS, ...UNWRAP_RANGE_OPS];
/** Range aggregations Loki allows a `by` / `without` on. */
const GROUPING_RANGE_OPS: readonly RangeOp[] = [
  "avg_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "max_over_time",
  "min_over_time",
  "first_over_time",
  "last_over_time",
];
export const VECTOR_OPS = [
  "sum",
  "avg",
  "min",
  "max",
  "count",
  "stddev",
  "stdvar",
  "topk",
  "bottomk",
  "sort",
  "sort_desc",
] as const;

export type RangeOp = (typeof LOG_RANGE_OPS)[number] | (typeof UNWRAP_RANGE_OPS)[number];
export type VectorOp = (typeof VECTOR_OPS)[number];

/** `by (a, b)` keeps only those labels, `without (a)` drops them. */
export interface Grouping {
  without: boolean;
  labels: string[];
}

export interface Unwrap {
  label: string;
  /** Filters after the unwrap (`| unwrap x | __error__=""`). */
  post: PipelineStage[];
}

export interface RangeAggregation {
  kind: "range";
  op: RangeOp;
  rangeNs: bigint;
  /** Stream selector and the pipeline before the unwrap. */
  selector: LogQuery;
  unwrap?: Unwrap;
  grouping?: Grouping;
  /** quantile_over_time's φ. */
  parameter?: number;
}

export interface VectorAggregation {
  kind: "vector";
  op: VectorOp;
  grouping?: Grouping;
  /** topk / bottomk's k. */
  parameter?: number;
  inner: MetricExpr;
}

export type MetricExpr = RangeAggregation | VectorAggregation;

function readGrouping(query: string, node: SyntaxNode | null): Grouping | undefined {
  if (!node) return undefined;
  const labels = node.getChild("Labels");
  return {
    without: node.getChild("Without") !== null,
    labels: labels ? collect(labels, "Identifier").map((n) => text(query, n)) : [],
  };
}

function readUnwrap(query: string, node: SyntaxNode | null): Unwrap | undefined {
  if (!node) return undefined;
  // `| unwrap x | filter` nests the plain unwrap inside an UnwrapExpr with the filter.
  const inner = node.getChild("UnwrapExpr");
  if (inner) {
    const base = readUnwrap(query, inner) as Unwrap;
    const filter = node.getChild("LabelFilter");
    if (!filter) throw queryError(`not supported by this test server: ${text(query, node)}`);
    return { label: base.label, post: [...base.post, readLabelFilter(query, filter, node)] };
  }
  if (node.getChild("ConvOp")) {
    throw queryError(`not supported by this test server: unwrap conversion in ${text(query, node)}`);
  }
  const label = node.getChild("Identifier");
  if (!label) throw queryError(`not supported by this test server: ${text(query, node)}`);
  return { label: text(query, label), post: [] };
}

function readRange(query: string, node: SyntaxNode): bigint {
  const duration = node.getChild("Range")?.getChild("Duration");
  if (!duration) throw queryError(`parse error : missing range in ${text(query, node)}`);
  return BigInt(parseDurationMs(text(query, duration), "range")) * NS_PER_MS;
}

function readRangeAggregation(query: string, node: SyntaxNode): RangeAggregation {
  const opText = text(query, node.getChild("RangeOp") as SyntaxNode);
  if (!(RANGE_OPS as readonly string[]).includes(opText)) {
    throw queryError(`not supported by this test server: ${opText}`);
  }
  const op = opText as RangeOp;
  const logRange = node.getChild("LogRangeExpr");
  if (!logRange) throw queryError(`not supported by this test server: ${text(query, node)}`);
  const unwrap = readUnwrap(query, logRange.getChild("UnwrapExpr"));
  const grouping = readGrouping(query, node.getChild("Grouping"));
  const parameter = node.getChild("Number");
  if (op === "quantile_over_time" && !parameter) {
    throw queryError(`parse error : parameter required for operation ${op}`);
  }
  // The checks of Loki's RangeAggregationExpr.validate, in its order.
  if (grouping && !GROUPING_RANGE_OPS.includes(op)) {
    throw queryError(`parse error : grouping not allowed for ${op} aggregation`);
  }
  if (unwrap && !(UNWRAP_RANGE_OPS as readonly RangeOp[]).includes(op)) {
    throw queryError(`parse error : invalid aggregation ${op} with unwrap`);
  }
  if (!unwrap && !(LOG_RANGE_OPS as readonly RangeOp[]).includes(op)) {
    throw queryError(`parse error : invalid aggregation ${op} without unwrap`);
  }
  return {
    kind: "range",
    op,
    rangeNs: readRange(query, logRange),
    selector: readLogSelector(query, logRange),
    ...(unwrap ? { unwrap } : {}),
    ...(grouping ? { grouping } : {}),
    ...(parameter ? { parameter: Number(text(query, parameter)) } : {}),
  };
}

function readVectorAggregation(query: string, node: SyntaxNode): VectorAggregation {
  const op = text(query, node.getChild("VectorOp") as SyntaxNode) as VectorOp;
  if (!(VECTOR_OPS as readonly string[]).includes(op)) {
    throw queryError(`not supported by this test server: ${op}`);
  }
  const inner = node.getChild("MetricExpr");
  if (!inner) throw queryError(`not supported by this test server: ${text(query, node)}`);
  const grouping = readGrouping(query, node.getChild("Grouping"));
  const parameter = node.getChild("Number");
  return {
    kind: "vector",
    op,
    inner: readMetricExpr(query, inner),
    ...(grouping ? { grouping } : {}),
    ...(parameter ? { parameter: Number(text(query, parameter)) } : {}),
  };
}

function readMetricExpr(query: string, node: SyntaxNode): MetricExpr {
  const range = node.getChild("RangeAggregationExpr");
  if (range) return readRangeAggregation(query, range);
  const vector = node.getChild("VectorAggregationExpr");
  if (vector) return readVectorAggregation(query, vector);
  throw queryError(`not supported by this test server: ${text(query, node)}`);
}

/** A parsed query: a log query, or a metric query this server can evaluate. */
export type ParsedQuery = { kind: "log"; query: LogQuery } | { kind: "metric"; expr: MetricExpr };

/** Parses a LogQL query with the lezer LogQL grammar, with Loki's parse errors. */
export function parseQuery(query: string): ParsedQuery {
  const expr = parseSyntax(query).getChild("Expr");
  const logExpr = expr?.getChild("LogExpr");
  if (logExpr) return { kind: "log", query: readLogSelector(query, logExpr) };
  const metricExpr = expr?.getChild("MetricExpr");
  if (!metricExpr) throw queryError(`not supported by this test server: ${query}`);
  return { kind: "metric", expr: readMetricExpr(query, metricExpr) };
}

/** The longest range of a metric expression (Loki adds it to the query length it limits). */
export function maxRangeNs(expr: MetricExpr): bigint {
  return expr.kind === "range" ? expr.rangeNs : maxRangeNs(expr.inner);
}
