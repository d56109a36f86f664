/** Shared by the measurement scripts: a seeded 80/20 split of a site's table, and numeric env options. */
import type { Cell, Table } from "../shared/schema/schema.js";
import type { Rng } from "../shared/random/rng.js";

export const num = (name: string, fallback: number) => (process.env[name] !== undefined ? Number(process.env[name]) : fallback);

function subset(table: Table, rows: number[]): Table {
  return { schema: table.schema, rowCount: rows.length, columns: table.columns.map((col) => rows.map((i) => col[i] as Cell)) };
}

export function split(table: Table, rng: Rng): { train: Table; holdout: Table } {
  const order = Array.from({ length: table.rowCount }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const k = Math.floor(rng.next() * (i + 1));
    [order[i], order[k]] = [order[k], order[i]];
  }
  const cut = Math.round(0.2 * order.length);
  return { holdout: subset(table, order.slice(0, cut).sort((a, b) => a - b)), train: subset(table, order.slice(cut).sort((a, b) => a - b)) };
}
