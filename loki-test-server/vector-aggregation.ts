import type { LabelPairs } from "./labels.ts";
import type { VectorAggregation } from "./metric-syntax.ts";
import { groupLabels, type Vector } from "./range-aggregation.ts";
import { mean, sum, variance } from "./statistics.ts";

type VectorSample = Vector[number];

function labelOrder(a: VectorSample, b: VectorSample): number {
  const x = JSON.stringify(a.labels);
  const y = JSON.stringify(b.labels);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The series of a vector by their grouping labels, in order of first appearance. */
function groupsOf(
  vector: Vector,
  aggregation: VectorAggregation,
): Map<string, { labels: LabelPairs; members: Vector }> {
  const groups = new Map<string, { labels: LabelPairs; members: Vector }>();
  for (const sample of vector) {
    const labels = groupLabels(sample.labels, aggregation.grouping);
    const key = JSON.stringify(labels);
    let group = groups.get(key);
    if (!group) {
      group = { labels, members: [] };
      groups.set(key, group);
    }
    group.members.push(sample);
  }
  return groups;
}

function aggregateGroup(op: VectorAggregation["op"], values: number[]): number {
  switch (op) {
    case "sum":
      return sum(values);
    case "avg":
      return mean(values);
    case "min":
      return Math.min(...values);
    case "max":
      return Math.max(...values);
    case "count":
      return values.length;
    case "stdvar":
      return variance(values);
    default:
      return Math.sqrt(variance(values));
  }
}

/** topk / bottomk: the k largest (smallest) series of each group, with all their labels. */
function selectK(vector: Vector, aggregation: VectorAggregation): Vector {
  const k = Math.trunc(aggregation.parameter ?? 0);
  const direction = aggregation.op === "topk" ? -1 : 1;
  const selected: Vector = [];
  for (const { members } of groupsOf(vector, aggregation).values()) {
    const ordered = [...members].sort((a, b) => direction * (a.value - b.value) || labelOrder(a, b));
    selected.push(...ordered.slice(0, Math.max(0, k)));
  }
  return selected;
}

/**
 * Applies a vector aggregation to the instant vector of one evaluation time: sum / avg / min /
 * max / count / stddev / stdvar by their grouping, topk / bottomk per group, sort / sort_desc.
 */
export function aggregateVector(aggregation: VectorAggregation, vector: Vector): Vector {
  switch (aggregation.op) {
    case "topk":
    case "bottomk":
      return selectK(vector, aggregation);
    case "sort":
      return [...vector].sort((a, b) => a.value - b.value || labelOrder(a, b));
    case "sort_desc":
      return [...vector].sort((a, b) => b.value - a.value || labelOrder(a, b));
    default:
      return [...groupsOf(vector, aggregation).values()].map(({ labels, members }) => ({
        labels,
        value: aggregateGroup(
          aggregation.op,
          members.map((member) => member.value),
        ),
      }));
  }
}
