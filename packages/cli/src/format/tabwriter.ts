/**
 * Column alignment as docker's tables do it (Go's tabwriter with minwidth 10, padding 3, spaces):
 * cells are separated by tabs; every cell except a line's last is padded to its column's width.
 */
export function alignColumns(lines: readonly string[], minWidth = 10, padding = 3): string[] {
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const cells of rows) {
    cells.slice(0, -1).forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, Math.max(minWidth, [...c].length + padding));
    });
  }
  return rows.map((cells) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - [...c].length))).join(''),
  );
}
