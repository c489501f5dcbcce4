/** Where a command writes; tests pass their own to read what a user would see. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** True when stdout is a terminal: progress bars instead of plain lines. */
  interactive: boolean;
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  interactive: Boolean(process.stdout.isTTY),
};

/** A plain text table: columns padded to their widest cell, numbers right-aligned. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? "").length)));
  return cells
    .map((row, rowIndex) =>
      row
        .map((cell, column) => {
          const width = widths[column] ?? 0;
          const numeric = rowIndex > 0 && typeof rows[rowIndex - 1]?.[column] === "number";
          return numeric ? cell.padStart(width) : cell.padEnd(width);
        })
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
