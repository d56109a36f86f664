/**
 * The conformance suite every engine must pass. An engine's test file calls
 * `describeEngineConformance(engine)`, which declares vitest blocks that drive the engine the way the
 * coordinator and the site agents do (configs travel as JSON, models as bytes) on a small synthetic study
 * with integer, continuous, stepped (recorded to 0.1, with a point mass at 0) and categorical columns and
 * missing cells, split over three sites.
 *
 * The helpers (schema, site tables, a federated run, validity checks, per-column distributions) are
 * exported for engine-specific tests.
 */
import { describe, expect, it } from "vitest";
import type { Engine, JsonObject, SecureAggregationSetting, StudyPrivacy, TaskContext } from "./engine.js";
import { decodeSum, encodeContribution } from "../federation/secure-contribution.js";
import type { Cell, Column, OutputRow, Schema, Table } from "../schema/schema.js";
import { binIndex, categoryCount, numericBins, numericGrid } from "../schema/bins.js";
import type { Mechanism } from "../privacy/mechanism.js";
import { Accountant } from "../privacy/accountant.js";
import { SeededRng, gaussian, type Rng } from "../random/rng.js";
import { FedsynthError } from "../errors.js";

export interface ConformanceOptions {
  /** Budgets for which configure must spend between 95% and 100% of epsilon. */
  budgets?: StudyPrivacy[];
  /** Budget of the "learns" test (large epsilon: the noise is negligible). */
  learningPrivacy?: StudyPrivacy;
  /** Largest accepted per-column total variation distance in the "learns" test (default 0.05). */
  maxTvd?: number;
  /** Synthetic rows drawn in the "learns" test (default 20000). */
  sampleRows?: number;
  /** Rows of each of the three sites (default [1500, 2500, 1000]). */
  siteRows?: number[];
  /** Per-test timeout in ms. */
  timeout?: number;
}

/** The synthetic study's schema: integer (exact and binned), continuous, stepped and categorical columns. */
export const conformanceSchema: Schema = {
  columns: [
    { name: "age", type: "numeric", min: 18, max: 90, integer: true },
    { name: "visits", type: "numeric", min: 0, max: 10, integer: true },
    { name: "bmi", type: "numeric", min: 15, max: 45, integer: false },
    { name: "lab", type: "numeric", min: -2.5, max: 3.7, integer: false, bins: 8 },
    { name: "sex", type: "categorical", values: ["F", "M"] },
    { name: "diagnosis", type: "categorical", values: ["A", "B", "C", "D"] },
    { name: "smoker", type: "categorical", values: ["yes", "no", "former"] },
    { name: "score", type: "numeric", min: -3, max: 7, integer: false, step: 0.1 },
  ],
  missing: ["", "NA"],
};

const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

function pickWeighted(rng: Rng, weights: number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return weights.length - 1;
}

/**
 * Three sites' tables for `conformanceSchema`, built deterministically from `seed`. The sites differ in
 * their distributions and in their missingness, as real sites do.
 */
export function conformanceSites(seed = 1, siteRows: number[] = [1500, 2500, 1000]): Table[] {
  const rng = new SeededRng(seed);
  return siteRows.map((rows, s) => {
    const cols: Cell[][] = conformanceSchema.columns.map(() => []);
    const miss = (p: number) => rng.next() < p;
    for (let i = 0; i < rows; i++) {
      cols[0].push(miss(0.02) ? null : clip(Math.round(45 + 8 * s + 15 * gaussian(rng)), 18, 90));
      cols[1].push(clip(Math.floor(-Math.log(1 - rng.next()) * (1.5 + s)), 0, 10));
      cols[2].push(miss(0.1) ? null : clip(27 + s + 5 * gaussian(rng), 15, 45));
      cols[3].push(miss(0.3 + 0.1 * s) ? null : clip(0.5 + gaussian(rng), -2.5, 3.7));
      cols[4].push(rng.next() < 0.5 + 0.1 * s ? 0 : 1);
      cols[5].push(miss(0.05) ? null : pickWeighted(rng, [[5, 3, 1, 1], [2, 2, 3, 1], [1, 1, 1, 4]][s % 3]));
      cols[6].push(miss(0.2) ? null : pickWeighted(rng, [1 + s, 5, 2]));
      // Recorded to 0.1, with 40% of the values exactly 0 (a point mass such as "no ST depression").
      cols[7].push(miss(0.05) ? null : rng.next() < 0.4 ? 0 : Number(clip(1 + 0.5 * s + 1.2 * gaussian(rng), -3, 7).toFixed(1)) || 0);
    }
    return { schema: conformanceSchema, rowCount: rows, columns: cols };
  });
}

/** All sites' rows in one table. */
export function poolTables(tables: Table[]): Table {
  const schema = tables[0].schema;
  return {
    schema,
    rowCount: tables.reduce((n, t) => n + t.rowCount, 0),
    columns: schema.columns.map((_, j) => tables.flatMap((t) => t.columns[j])),
  };
}

export interface FederatedRun<M> {
  config: JsonObject;
  model: M;
  /** The charge of each round (identical for every site; checked). */
  charges: Mechanism[][];
}

const jsonClone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/**
 * Drives a whole study the way the coordinator and agents do: configure, init, and for each round
 * planRound, each site's localUpdate (config and round config as JSON, the model as bytes when needed),
 * the element-wise sum, aggregate. Checks the update lengths, finiteness and that all sites are charged
 * alike. `noise` defaults to a seeded source so that tests are reproducible (production uses SecureRng).
 */
export function runFederation<M>(engine: Engine<M>, schema: Schema, privacy: StudyPrivacy, sites: Table[], noise: Rng = new SeededRng(99)): FederatedRun<M> {
  const config = engine.configure(schema, privacy);
  expect(jsonClone(config)).toEqual(config);
  let model = engine.init(schema, config);
  const charges: Mechanism[][] = [];
  for (let round = 1; round <= privacy.rounds; round++) {
    const roundConfig = engine.planRound(model, { schema, privacy, config, round });
    expect(jsonClone(roundConfig)).toEqual(roundConfig);
    const coordinatorCtx: TaskContext = { schema, privacy, config, round, roundConfig };
    const length = engine.updateLength(coordinatorCtx);
    expect(Number.isSafeInteger(length) && length > 0).toBe(true);
    const sum = new Float64Array(length);
    let roundCharge: Mechanism[] | undefined;
    for (const table of sites) {
      // What a site receives: JSON for the public parameters, bytes for the model.
      const ctx: TaskContext = { schema: jsonClone(schema), privacy: jsonClone(privacy), config: jsonClone(config), round, roundConfig: jsonClone(roundConfig) };
      const siteModel = engine.needsModel(ctx) ? engine.deserialize(engine.serialize(model), ctx.schema, ctx.config) : null;
      const charge = engine.charge(ctx);
      if (roundCharge === undefined) roundCharge = charge;
      else expect(charge).toEqual(roundCharge);
      expect(engine.updateLength(ctx)).toBe(length);
      const update = engine.localUpdate(ctx, siteModel, table, noise);
      expect(update).toBeInstanceOf(Float64Array);
      expect(update.length).toBe(length);
      for (let i = 0; i < length; i++) {
        if (!Number.isFinite(update[i])) throw new Error(`update value ${i} is not finite: ${update[i]}`);
        sum[i] += update[i];
      }
    }
    charges.push(roundCharge ?? []);
    model = engine.aggregate(model, sum, sites.length, coordinatorCtx);
  }
  return { config, model, charges };
}

/**
 * The engine with secure aggregation switched on in its config, each site's "update" its grid words
 * decoded: so the sum a federated run forms is the sum the coordinator decodes (decoding is linear while
 * nothing wraps). For engines with a secure path (engine.secure).
 */
export function secureStudyEngine<M>(base: Engine<M>, setting: SecureAggregationSetting): Engine<M> {
  const withSecure = <T extends { privacy: object }>(ctx: T): T => ({ ...ctx, privacy: { ...ctx.privacy, secureAggregation: setting } });
  return {
    ...base,
    configure: (schema, privacy) => base.configure(schema, { ...privacy, secureAggregation: setting }),
    planRound: (model, ctx) => base.planRound(model, withSecure(ctx)),
    charge: (ctx) => base.charge(withSecure(ctx)),
    updateLength: (ctx) => base.updateLength(withSecure(ctx)),
    localUpdate: (ctx, model, table) => {
      const c = withSecure(ctx);
      return decodeSum(encodeContribution(base.secure!.contribution(c, model, table), base.secure!.grid(c)).words, base.secure!.grid(c));
    },
  };
}

/** Why a synthetic row is invalid under the schema, or null when it is valid. */
export function rowProblem(schema: Schema, row: OutputRow): string | null {
  if (!Array.isArray(row) || row.length !== schema.columns.length) return `row has ${row?.length} cells, schema ${schema.columns.length}`;
  for (let j = 0; j < row.length; j++) {
    const column = schema.columns[j];
    const cell = row[j];
    if (typeof cell !== "string") return `column '${column.name}': not a string (${String(cell)})`;
    if (cell === "") continue;
    if (schema.missing.includes(cell)) return `column '${column.name}': "${cell}" would read back as missing`;
    if (column.type === "categorical") {
      if (!column.values.includes(cell)) return `column '${column.name}': "${cell}" is not a category`;
    } else {
      if (cell.trim() !== cell) return `column '${column.name}': "${cell}" has spaces`;
      const v = Number(cell);
      if (!Number.isFinite(v)) return `column '${column.name}': "${cell}" is not a number`;
      if (v < column.min || v > column.max) return `column '${column.name}': ${cell} is outside [${column.min}, ${column.max}]`;
      if (column.integer && !Number.isInteger(v)) return `column '${column.name}': ${cell} is not a whole number`;
      const grid = column.step !== undefined ? numericGrid(column) : undefined;
      if (grid && Math.abs(grid.value(grid.index(v)) - v) > 1e-9 * grid.step) {
        return `column '${column.name}': ${cell} is not a multiple of the step ${column.step} from ${grid.origin}`;
      }
    }
  }
  return null;
}

/** Cell of a column (categoryCount(column) = missing) for an output string. */
function outputCell(column: Column, text: string, bins: ReturnType<typeof numericBins> | undefined): number {
  if (text === "") return categoryCount(column);
  if (column.type === "categorical") return column.values.indexOf(text);
  return binIndex(bins!, Number(text));
}

/** Per-column distributions over categories/bins plus a last "missing" cell, of synthetic rows. */
export function rowDistributions(schema: Schema, rows: OutputRow[]): Float64Array[] {
  return schema.columns.map((column, j) => {
    const bins = column.type === "numeric" ? numericBins(column) : undefined;
    const counts = new Float64Array(categoryCount(column) + 1);
    for (const row of rows) counts[outputCell(column, row[j], bins)] += 1;
    return counts.map((c) => c / Math.max(1, rows.length));
  });
}

/** Per-column distributions (same cells as `rowDistributions`) of a table. */
export function tableDistributions(table: Table): Float64Array[] {
  return table.schema.columns.map((column, j) => {
    const bins = column.type === "numeric" ? numericBins(column) : undefined;
    const missing = categoryCount(column);
    const counts = new Float64Array(missing + 1);
    for (const v of table.columns[j]) counts[v === null ? missing : column.type === "categorical" ? v : binIndex(bins!, v)] += 1;
    return counts.map((c) => c / Math.max(1, table.rowCount));
  });
}

export function totalVariation(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < p.length; i++) d += Math.abs(p[i] - q[i]);
  return d / 2;
}

function expectFedsynthError(fn: () => unknown, code?: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, "expected a FedsynthError").toBeInstanceOf(FedsynthError);
  if (code) expect((err as FedsynthError).code).toBe(code);
}

export function describeEngineConformance<M>(engine: Engine<M>, opts: ConformanceOptions = {}): void {
  const schema = conformanceSchema;
  const budgets = opts.budgets ?? [
    { epsilon: 1, delta: 1e-5, rounds: 1 },
    { epsilon: 0.3, delta: 1e-6, rounds: 3 },
    { epsilon: 8, delta: 1e-5, rounds: 5 },
  ];
  const learningPrivacy = opts.learningPrivacy ?? { epsilon: 1e4, delta: 1e-5, rounds: 2 };
  const maxTvd = opts.maxTvd ?? 0.05;
  const sampleRows = opts.sampleRows ?? 20_000;
  const sites = conformanceSites(1, opts.siteRows);
  const timeout = opts.timeout ?? 60_000;

  // One trained model shared by the sampling tests (built lazily, once).
  let trained: FederatedRun<M> | undefined;
  const train = () => (trained ??= runFederation(engine, schema, learningPrivacy, sites));

  describe(`engine conformance: ${engine.name}`, () => {
    it("has a name and a description", () => {
      expect(engine.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(engine.description.length).toBeGreaterThan(10);
    });

    describe("privacy", () => {
      for (const privacy of budgets) {
        it(
          `configure spends the budget ε=${privacy.epsilon}, δ=${privacy.delta} over ${privacy.rounds} round(s), never more`,
          () => {
            const run = runFederation(engine, schema, privacy, sites);
            expect(run.charges.length).toBe(privacy.rounds);
            const all = run.charges.flat();
            expect(all.length).toBeGreaterThan(0);
            const spent = Accountant.epsilonOf(all, privacy.delta);
            expect(spent).toBeLessThanOrEqual(privacy.epsilon);
            expect(spent).toBeGreaterThanOrEqual(0.95 * privacy.epsilon);
          },
          timeout,
        );
      }

      it("charge is deterministic, from public parameters only, and the same for every site", () => {
        const privacy = budgets[0];
        const config = engine.configure(schema, privacy);
        expect(engine.configure(schema, privacy)).toEqual(config);
        const model = engine.init(schema, config);
        const roundConfig = engine.planRound(model, { schema, privacy, config, round: 1 });
        const ctx: TaskContext = { schema, privacy, config, round: 1, roundConfig };
        const first = engine.charge(ctx);
        expect(engine.charge(ctx)).toEqual(first);
        expect(engine.charge(jsonClone(ctx))).toEqual(first);
        expect(jsonClone(first)).toEqual(first);
        // Charging must not depend on a site's data: a site's update is charged as announced.
        for (const table of sites) {
          engine.localUpdate(ctx, engine.needsModel(ctx) ? model : null, table, new SeededRng(5));
          expect(engine.charge(ctx)).toEqual(first);
        }
      });

      it("configure refuses invalid budgets with FedsynthError('invalid-argument')", () => {
        const bad: StudyPrivacy[] = [
          { epsilon: 0, delta: 1e-5, rounds: 1 },
          { epsilon: -1, delta: 1e-5, rounds: 1 },
          { epsilon: NaN, delta: 1e-5, rounds: 1 },
          { epsilon: Infinity, delta: 1e-5, rounds: 1 },
          { epsilon: 1, delta: 0, rounds: 1 },
          { epsilon: 1, delta: 1, rounds: 1 },
          { epsilon: 1, delta: 1e-5, rounds: 0 },
          { epsilon: 1, delta: 1e-5, rounds: 1.5 },
        ];
        for (const privacy of bad) expectFedsynthError(() => engine.configure(schema, privacy), "invalid-argument");
      });
    });

    describe("updates", () => {
      it("localUpdate returns exactly updateLength finite values, also for an empty table", () => {
        const privacy = budgets[0];
        const config = engine.configure(schema, privacy);
        const model = engine.init(schema, config);
        const ctx: TaskContext = { schema, privacy, config, round: 1, roundConfig: engine.planRound(model, { schema, privacy, config, round: 1 }) };
        const length = engine.updateLength(ctx);
        const empty: Table = { schema, rowCount: 0, columns: schema.columns.map(() => []) };
        for (const table of [...sites, empty]) {
          const update = engine.localUpdate(ctx, engine.needsModel(ctx) ? model : null, table, new SeededRng(3));
          expect(update.length).toBe(length);
          expect(update.every(Number.isFinite)).toBe(true);
        }
      });
    });

    describe("sampling", () => {
      it(
        "a federated run produces rows that are valid under the schema",
        () => {
          const run = runFederation(engine, schema, budgets[0], sites);
          const rows = [...engine.sample(run.model, 5000, new SeededRng(11))];
          expect(rows.length).toBe(5000);
          for (const row of rows) {
            const problem = rowProblem(schema, row);
            if (problem) throw new Error(`invalid row ${JSON.stringify(row)}: ${problem}`);
          }
          expect([...engine.sample(run.model, 0, new SeededRng(1))]).toEqual([]);
        },
        timeout,
      );

      it(
        `learns: with a large epsilon every column's distribution is within TVD ${maxTvd} of the pooled data`,
        () => {
          const { model } = train();
          const rows = [...engine.sample(model, sampleRows, new SeededRng(12))];
          for (const row of rows) {
            const problem = rowProblem(schema, row);
            if (problem) throw new Error(`invalid row ${JSON.stringify(row)}: ${problem}`);
          }
          const want = tableDistributions(poolTables(sites));
          const got = rowDistributions(schema, rows);
          schema.columns.forEach((column, j) => {
            expect(totalVariation(got[j], want[j]), `column '${column.name}'`).toBeLessThan(maxTvd);
          });
        },
        timeout,
      );

      it("sample is reproducible given the seed", () => {
        const { model } = train();
        const a = [...engine.sample(model, 300, new SeededRng(42))];
        const b = [...engine.sample(model, 300, new SeededRng(42))];
        const c = [...engine.sample(model, 300, new SeededRng(43))];
        expect(b).toEqual(a);
        expect(c).not.toEqual(a);
      });
    });

    describe("serialization", () => {
      it("serialize → deserialize → sample with the same seed gives identical rows", () => {
        const { model, config } = train();
        const bytes = engine.serialize(model);
        expect(bytes).toBeInstanceOf(Uint8Array);
        const copy = engine.deserialize(bytes.slice(), jsonClone(schema), jsonClone(config));
        expect([...engine.sample(copy, 500, new SeededRng(7))]).toEqual([...engine.sample(model, 500, new SeededRng(7))]);
        expect(engine.serialize(copy)).toEqual(bytes);
        // Bytes at an offset inside a larger buffer (as received from a transport) read the same.
        const padded = new Uint8Array(bytes.length + 16);
        padded.set(bytes, 8);
        const shifted = engine.deserialize(padded.subarray(8, 8 + bytes.length), schema, config);
        expect([...engine.sample(shifted, 50, new SeededRng(7))]).toEqual([...engine.sample(model, 50, new SeededRng(7))]);
      });

      it.runIf(engine.serializeForSampling !== undefined)("serializeForSampling → deserialize samples the same rows, and serializes to the same bytes", () => {
        const { model, config } = train();
        const bytes = engine.serializeForSampling!(model);
        const copy = engine.deserialize(bytes.slice(), jsonClone(schema), jsonClone(config));
        expect([...engine.sample(copy, 500, new SeededRng(7))]).toEqual([...engine.sample(model, 500, new SeededRng(7))]);
        expect(engine.serialize(copy)).toEqual(bytes);
      });

      it("the initial model survives serialization", () => {
        const config = engine.configure(schema, budgets[0]);
        const model = engine.init(schema, config);
        const copy = engine.deserialize(engine.serialize(model), schema, config);
        expect(engine.serialize(copy)).toEqual(engine.serialize(model));
      });

      it("deserialize rejects damaged bytes and another schema with FedsynthError", () => {
        const { model, config } = train();
        const bytes = engine.serialize(model);
        expectFedsynthError(() => engine.deserialize(bytes.subarray(0, bytes.length - 1), schema, config));
        expectFedsynthError(() => engine.deserialize(bytes.subarray(0, Math.floor(bytes.length / 2)), schema, config));
        expectFedsynthError(() => engine.deserialize(new Uint8Array(0), schema, config));
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        expectFedsynthError(() => engine.deserialize(longer, schema, config));
        const otherSchema: Schema = { ...schema, columns: [...schema.columns, { name: "extra", type: "categorical", values: ["x", "y"] }] };
        expectFedsynthError(() => engine.deserialize(bytes, otherSchema, config));
      });
    });
  });
}
