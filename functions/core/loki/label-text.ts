/** `{a="x", b="y"}` with sorted names: the form Loki parses and prints back in its errors. */
export function formatLabels(labels: Record<string, string>): string {
  const names = Object.keys(labels).sort();
  return `{${names.map((name) => `${name}=${JSON.stringify(labels[name])}`).join(", ")}}`;
}

/** Stream key = sorted label set. */
export function streamKey(labels: Record<string, string>): string {
  return formatLabels(labels);
}
