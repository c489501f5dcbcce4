import { HttpError } from "./errors.ts";
import { formatLabels, type LabelPairs } from "./labels.ts";
import type { Grouping, RangeAggregation } from "./metric-syntax.ts";
import { EntryLabels, parseGoFloat, runPipeline } from "./pipeline.ts";
import { entriesInRange } from "./query.ts";
import { mean, quantile, sum, variance } from "./statistics.ts";
import { type LogStore, type StoredEntry, upperBound } from "./store.ts";

/** One sample of a series: an entry's timestamp and its value (1, its bytes, or the unwrapped number). */
interface Sample {
  ts: bigint;
  value: number;
}

interface Series {
  labels: LabelPairs;
  /** Samples by time. */
  samples: Sample[];
}

/** An instant vector: one value per series at one evaluation time. */
export type Vector = Array<{ labels: LabelPairs; value: number }>;

export interface ExtractOptions {
  discoverLogLevels: boolean;
  /** Entries before this are not queryable (Loki's query_ingesters_within). */
  queryableFrom?: bigint;
}

/** Labels kept by a grouping: `by` keeps the listed ones (those present), `without` drops them. */
export function groupLabels(labels: LabelPairs, grouping: Grouping | undefined): LabelPairs {
  if (!grouping) return [];
  if (grouping.without) return labels.filter(([name]) => !grouping.labels.includes(name));
  return labels.filter(([name, value]) => grouping.labels.includes(name) && value !== "");
}

/**
 * The value of an entry for an unwrap aggregation, Loki's `labelSampleExtractor`: an entry without
 * the label is skipped, an unparsable value marks the entry with `SampleExtractionErr`, and the
 * unwrapped label leaves the series labels unless `by` lists it.
 */
function unwrappedValue(aggregation: RangeAggregation, labels: EntryLabels): number | undefined {
  const unwrap = aggregation.unwrap;
  if (!unwrap) return aggregation.op.startsWith("bytes") ? Buffer.byteLength(labels.entry.line) : 1;
  const text = labels.get(unwrap.label);
  if (text === undefined) return undefined;
  const parsed = parseGoFloat(text);
  if (typeof parsed !== "number") labels.setError("SampleExtractionErr", parsed.error);
  if (!runPipeline(unwrap.post, labels)) return undefined;
  if (!labels.hasError && !aggregation.grouping?.labels.includes(unwrap.label))
    labels.dropped.add(unwrap.label);
  return typeof parsed === "number" ? parsed : 0;
}

function seriesLabels(aggregation: RangeAggregation, labels: EntryLabels): LabelPairs {
  const all = labels.all();
  // Loki returns before grouping when an entry has an error, so that the error is not lost.
  if (labels.hasError || !aggregation.grouping) return all;
  return groupLabels(all, aggregation.grouping);
}

/**
 * The samples of a range aggregation's log selector with entries in (from, to], grouped into
 * series by their labels (stream labels, structured metadata, errors; the range grouping applied).
 */
export function extractSeries(
  store: LogStore,
  tenant: string,
  aggregation: RangeAggregation,
  window: { from: bigint; to: bigint },
  options: ExtractOptions,
): Series[] {
  const series = new Map<string, Series>();
  const from =
    options.queryableFrom !== undefined && options.queryableFrom > window.from
      ? options.queryableFrom
      : window.from + 1n;
  const matchers = aggregation.selector.matchers;
  for (const { stream, entries, first, last } of entriesInRange(
    store,
    tenant,
    matchers,
    from,
    window.to + 1n,
  )) {
    for (let k = first; k < last; k++) {
      const labels = new EntryLabels(stream, entries[k] as StoredEntry, options.discoverLogLevels);
      if (!runPipeline(aggregation.selector.pipeline, labels)) continue;
      const value = unwrappedValue(aggregation, labels);
      if (value === undefined) continue;
      const pairs = seriesLabels(aggregation, labels);
      const key = JSON.stringify(pairs);
      let found = series.get(key);
      if (!found) {
        found = { labels: pairs, samples: [] };
        series.set(key, found);
      }
      found.samples.push({ ts: labels.entry.ts, value });
    }
  }
  for (const found of series.values()) found.samples.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  return [...series.values()];
}

/** The value of a range aggregation over the samples of one window. */
function aggregateWindow(aggregation: RangeAggregation, values: number[]): number {
  const seconds = Number(aggregation.rangeNs) / 1e9;
  switch (aggregation.op) {
    case "count_over_time":
      return values.length;
    case "rate":
    case "bytes_rate":
      return sum(values) / seconds;
    case "bytes_over_time":
    case "sum_over_time":
      return sum(values);
    case "avg_over_time":
      return mean(values);
    case "max_over_time":
      return Math.max(...values);
    case "min_over_time":
      return Math.min(...values);
    case "first_over_time":
      return values[0] as number;
    case "last_over_time":
      return values[values.length - 1] as number;
    case "stdvar_over_time":
      return variance(values);
    case "stddev_over_time":
      return Math.sqrt(variance(values));
    case "quantile_over_time":
      return quantile(aggregation.parameter ?? Number.NaN, values);
  }
}

/** Loki's answer when a series of a metric query carries an `__error__` label. */
function pipelineError(labels: LabelPairs): HttpError {
  const error = labels.find(([name]) => name === "__error__")?.[1] ?? "";
  return new HttpError(
    400,
    `pipeline error: '${error}' for series: '${formatLabels(labels)}'.\n` +
      `Use a label filter to intentionally skip this error. (e.g | __error__!="${error}").\n` +
      'To skip all potential errors you can match empty errors.(e.g __error__="")\n' +
      'The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__="" )\n',
  );
}

/** The instant vector of a range aggregation at time t: every series with samples in (t - range, t]. */
export function evaluateRange(aggregation: RangeAggregation, series: readonly Series[], t: bigint): Vector {
  const vector: Vector = [];
  for (const { labels, samples } of series) {
    const window = samples.slice(upperBound(samples, t - aggregation.rangeNs), upperBound(samples, t));
    if (window.length === 0) continue;
    const values = window.map((sample) => sample.value);
    if (labels.some(([name]) => name === "__error__")) throw pipelineError(labels);
    vector.push({ labels, value: aggregateWindow(aggregation, values) });
  }
  return vector;
}
