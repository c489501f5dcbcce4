/** Markdown tables: readable in a terminal and in BENCHMARKS.md alike. */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const cells = rows.map((row) => {
    if (row.length !== header.length)
      throw new Error(`a table row has ${row.length} cells for ${header.length} columns: ${row.join(" | ")}`);
    return row.map(String);
  });
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => (row[column] ?? "").length)),
  );
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...cells.map(line)].join("\n");
}

export const fmt = {
  int: (value: number) => Math.round(value).toLocaleString("en-US"),
  fixed: (value: number, digits = 1) => value.toFixed(digits),
  ratio: (value: number) => value.toFixed(2),
  mb: (bytes: number) => (bytes / 1e6).toFixed(2),
};
