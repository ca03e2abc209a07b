/** Plain-text tables and sizes for terminal output. */

/**
 * Columns padded to their widest cell, two spaces apart; the last column is not padded, so long
 * label lists do not push trailing blanks. `paint` colours a cell after padding (widths are
 * measured on plain text, escape codes would skew them).
 */
export function formatTable(
  header: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  paint: (row: number, col: number, padded: string) => string = (_r, _c, s) => s,
): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: readonly string[], row: number) =>
    cells
      .map((cell, c) => {
        const padded = c === cells.length - 1 ? cell : cell.padEnd(widths[c]!)
        return row < 0 ? padded : paint(row, c, padded)
      })
      .join('  ')
      .trimEnd()
  return [line(header, -1), ...rows.map((r, i) => line(r, i))].join('\n') + '\n'
}

export { formatBytes } from '../../shared/format-bytes'
