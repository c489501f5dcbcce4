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

/** A plain text table: columns padded to their widest cell, number columns right-aligned. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? "").length)));
  // A column is numeric when every body cell is a number, a number formatted as text (12.5) or
  // "-" for none: all of it aligns right.
  const numeric = header.map((_, column) =>
    rows.every((row) => typeof row[column] === "number" || /^(-?\d+(\.\d+)?|-)$/.test(String(row[column]))),
  );
  return cells
    .map((row) =>
      row
        .map((cell, column) => {
          const width = widths[column] ?? 0;
          return numeric[column] ? cell.padStart(width) : cell.padEnd(width);
        })
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
