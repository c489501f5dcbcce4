import type { MetricExpr, RangeAggregation } from "./metric-syntax.ts";
import {
  type ExtractOptions,
  evaluateRange,
  extractSeries,
  groupLabels,
  type Vector,
} from "./range-aggregation.ts";
import type { LogStore } from "./store.ts";
import { NS_PER_MS } from "./time-format.ts";
import { aggregateVector } from "./vector-aggregation.ts";

/** Evaluates a metric expression at one time. */
type Evaluator = (t: bigint) => Vector;

interface EvaluationContext {
  store: LogStore;
  tenant: string;
  /** First and last evaluation time. */
  from: bigint;
  to: bigint;
  options: ExtractOptions;
}

/**
 * Whether Loki 3.4.6's query sharding rewrites this avg_over_time: with a grouping it becomes
 * `sum by (g) (sum_over_time(…unwrap…)) / sum by (g) (count_over_time(…without unwrap…))`
 * (pkg/logql/shardmapper.go), so entries without the unwrapped label count in the divisor.
 */
function isShardedAverage(expr: RangeAggregation): boolean {
  const grouping = expr.grouping;
  return (
    expr.op === "avg_over_time" &&
    expr.unwrap !== undefined &&
    grouping !== undefined &&
    (grouping.without || grouping.labels.length > 0)
  );
}

function prepareShardedAverage(expr: RangeAggregation, context: EvaluationContext): Evaluator {
  const sums = prepareRange({ ...expr, op: "sum_over_time" }, context);
  const { unwrap: _unwrap, ...withoutUnwrap } = expr;
  const counts = prepareRange({ ...withoutUnwrap, op: "count_over_time" }, context);
  return (t) => {
    const divisors = new Map<string, number>();
    for (const sample of counts(t)) divisors.set(JSON.stringify(sample.labels), sample.value);
    const vector: Vector = [];
    for (const sample of sums(t)) {
      const divisor = divisors.get(JSON.stringify(groupLabels(sample.labels, expr.grouping)));
      if (divisor !== undefined) vector.push({ labels: sample.labels, value: sample.value / divisor });
    }
    return vector;
  };
}

function prepareRange(expr: RangeAggregation, context: EvaluationContext): Evaluator {
  const window = { from: context.from - expr.rangeNs, to: context.to };
  const series = extractSeries(context.store, context.tenant, expr, window, context.options);
  return (t) => evaluateRange(expr, series, t);
}

function prepare(expr: MetricExpr, context: EvaluationContext): Evaluator {
  if (expr.kind === "vector") {
    const inner = prepare(expr.inner, context);
    return (t) => aggregateVector(expr, inner(t));
  }
  if (isShardedAverage(expr)) return prepareShardedAverage(expr, context);
  return prepareRange(expr, context);
}

/** Go's `strconv.FormatFloat(v, 'f', -1, 64)`, how Loki prints sample values. */
export function formatGoFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  const shortest = String(value);
  const exponent = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(shortest);
  if (!exponent) return shortest;
  const [, sign, first, rest = "", power] = exponent;
  const digits = `${first}${rest}`;
  const point = 1 + Number(power);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  return `${sign}${digits.padEnd(point, "0")}`;
}

/** A sample as Loki's JSON has it: Unix seconds (ms precision) as a number, the value as text. */
function sampleOf(t: bigint, value: number): [number, string] {
  return [Number(t / NS_PER_MS) / 1000, formatGoFloat(value)];
}

/** An instant query (`/loki/api/v1/query`): the vector at `time`. */
export function runInstantQuery(
  store: LogStore,
  tenant: string,
  expr: MetricExpr,
  time: bigint,
  options: ExtractOptions,
): Array<{ metric: Record<string, string>; value: [number, string] }> {
  const evaluate = prepare(expr, { store, tenant, from: time, to: time, options });
  return evaluate(time).map(({ labels, value }) => ({
    metric: Object.fromEntries(labels),
    value: sampleOf(time, value),
  }));
}

/**
 * The evaluation times of a range query: start rounded down and end rounded up to a multiple of
 * the step (Unix epoch), every step in between.
 */
export function stepGrid(start: bigint, end: bigint, step: bigint): bigint[] {
  const first = start - (((start % step) + step) % step);
  const remainder = ((end % step) + step) % step;
  const last = remainder === 0n ? end : end + step - remainder;
  const times: bigint[] = [];
  for (let t = first; t <= last; t += step) times.push(t);
  return times;
}

/** A range query (`/loki/api/v1/query_range`): one series per label set, points only where it has a value. */
export function runMetricRangeQuery(
  store: LogStore,
  tenant: string,
  expr: MetricExpr,
  grid: { start: bigint; end: bigint; step: bigint },
  options: ExtractOptions,
): Array<{ metric: Record<string, string>; values: Array<[number, string]> }> {
  const times = stepGrid(grid.start, grid.end, grid.step);
  const from = times[0] ?? grid.start;
  const to = times[times.length - 1] ?? grid.end;
  const evaluate = prepare(expr, { store, tenant, from, to, options });
  const series = new Map<string, { metric: Record<string, string>; values: Array<[number, string]> }>();
  for (const t of times) {
    for (const { labels, value } of evaluate(t)) {
      const key = JSON.stringify(labels);
      let found = series.get(key);
      if (!found) {
        found = { metric: Object.fromEntries(labels), values: [] };
        series.set(key, found);
      }
      found.values.push(sampleOf(t, value));
    }
  }
  return [...series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, value]) => value);
}
