/** The arithmetic of Loki's range and vector aggregations, rounding the way its Go code does. */

export function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/** Loki's incremental mean (avg_over_time and avg): `mean += v/n - mean/n`. */
export function mean(values: readonly number[]): number {
  let result = 0;
  let count = 0;
  for (const value of values) {
    count++;
    result += value / count - result / count;
  }
  return result;
}

/** Population variance by Welford's running update, as Prometheus and Loki compute stdvar. */
export function variance(values: readonly number[]): number {
  let count = 0;
  let average = 0;
  let squares = 0;
  for (const value of values) {
    count++;
    const delta = value - average;
    average += delta / count;
    squares += delta * (value - average);
  }
  return squares / count;
}

/** Prometheus' quantile: linear interpolation between the closest ranks. */
export function quantile(phi: number, values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  if (phi < 0) return -Infinity;
  if (phi > 1) return Infinity;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = phi * (sorted.length - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(sorted.length - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return (sorted[lower] as number) * (1 - weight) + (sorted[upper] as number) * weight;
}
