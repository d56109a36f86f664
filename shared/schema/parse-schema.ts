/**
 * Reading and validating the study schema (JSON). Every problem is reported as a FedsynthError
 * ("invalid-schema") whose message names the file and the JSON path, e.g.
 * `schema.json: columns[3] ("chol"): "min" must be a number`.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { FedsynthError } from "../errors.js";
import type { CategoricalColumn, Column, NumericColumn, Schema } from "./schema.js";

export const DEFAULT_MISSING: readonly string[] = ["", "?", "NA"];
export const MAX_BINS = 10000;
/** Most steps a numeric column's grid may span: (max − min) / step. */
export const MAX_GRID_STEPS = 1_000_000;

const TOP_LEVEL_KEYS = ["columns", "missing", "outcome"];
const NUMERIC_KEYS = ["name", "type", "min", "max", "integer", "bins", "step"];
const CATEGORICAL_KEYS = ["name", "type", "values"];

const FORMAT_HINT =
  'A schema looks like {"columns": [{"name": "age", "type": "numeric", "min": 0, "max": 120, "integer": true}, ' +
  '{"name": "sex", "type": "categorical", "values": ["0", "1"]}], "missing": ["", "?", "NA"]}.';

export async function loadSchema(path: string): Promise<Schema> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new FedsynthError("not-found", `${path}: schema file not found`, {
        hint: "Check the path to the schema file.",
        location: { file: path },
        cause: err,
      });
    }
    throw new FedsynthError("invalid-argument", `${path}: cannot read the schema file: ${(err as Error).message}`, {
      hint: "Check that the path names a readable file.",
      location: { file: path },
      cause: err,
    });
  }
  return parseSchema(text, path);
}

export function parseSchema(text: string, source: string): Schema {
  const fail = (message: string, hint: string = FORMAT_HINT, column?: string): never => {
    throw new FedsynthError("invalid-schema", `${source}: ${message}`, {
      hint,
      location: column !== undefined ? { file: source, column } : { file: source },
    });
  };

  let raw: unknown;
  try {
    raw = JSON.parse(stripBom(text));
  } catch (err) {
    const detail = (err as Error).message;
    const where = jsonErrorPosition(text, detail);
    throw new FedsynthError("invalid-schema", `${source}: not valid JSON${where ? ` at ${where}` : ""}: ${detail}`, {
      hint: "Fix the JSON syntax (a JSON validator or editor will point at the problem; trailing commas and comments are not allowed).",
      location: { file: source },
      cause: err,
    });
  }

  if (!isPlainObject(raw)) {
    fail(`the top level must be a JSON object with a "columns" array, got ${describeType(raw)}`);
  }
  const top = raw as Record<string, unknown>;
  for (const key of Object.keys(top)) {
    if (!TOP_LEVEL_KEYS.includes(key)) {
      fail(`unknown key "${key}" at the top level (allowed: ${TOP_LEVEL_KEYS.join(", ")})`, "Remove the key or fix its spelling.");
    }
  }

  // missing tokens first: categorical values are checked against them.
  let missing: string[];
  if (top.missing === undefined) {
    missing = [...DEFAULT_MISSING];
  } else {
    if (!Array.isArray(top.missing)) {
      fail(`"missing" must be an array of strings, got ${describeType(top.missing)}`, 'Write e.g. "missing": ["", "?", "NA"].');
    }
    missing = [];
    (top.missing as unknown[]).forEach((token, i) => {
      if (typeof token !== "string") {
        fail(`missing[${i}] must be a string, got ${describeType(token)}`, 'Write e.g. "missing": ["", "?", "NA"].');
      }
      const t = token as string;
      if (t.trim() !== t) {
        fail(`missing[${i}] ${JSON.stringify(t)} has leading or trailing whitespace; cells are trimmed before matching, so it could never match`, "Remove the whitespace.");
      }
      if (!missing.includes(t)) missing.push(t);
    });
  }

  if (top.columns === undefined) fail(`"columns" is missing`);
  if (!Array.isArray(top.columns)) fail(`"columns" must be an array, got ${describeType(top.columns)}`);
  const rawColumns = top.columns as unknown[];
  if (rawColumns.length === 0) fail(`"columns" is empty; a schema needs at least one column`);

  const columns: Column[] = [];
  const seen = new Map<string, number>();
  rawColumns.forEach((rc, i) => {
    let path = `columns[${i}]`;
    if (!isPlainObject(rc)) fail(`${path} must be an object, got ${describeType(rc)}`);
    const c = rc as Record<string, unknown>;

    if (c.name === undefined) fail(`${path}: "name" is missing`, "Give every column a name that matches its CSV header.");
    if (typeof c.name !== "string") fail(`${path}: "name" must be a string, got ${describeType(c.name)}`, "Give every column a name that matches its CSV header.");
    const name = c.name as string;
    if (name.trim() === "") fail(`${path}: "name" must not be empty`, "Give every column a name that matches its CSV header.");
    if (name.trim() !== name) {
      fail(`${path}: "name" ${JSON.stringify(name)} has leading or trailing whitespace; CSV header names are trimmed, so it could never match`, "Remove the whitespace.", name);
    }
    path = `${path} (${JSON.stringify(name)})`;
    const previous = seen.get(name);
    if (previous !== undefined) fail(`${path}: duplicate column name (also columns[${previous}])`, "Column names must be unique.", name);
    seen.set(name, i);

    const type = c.type;
    if (type === undefined) fail(`${path}: "type" is missing (must be "numeric" or "categorical")`, FORMAT_HINT, name);
    if (type !== "numeric" && type !== "categorical") {
      fail(`${path}: "type" must be "numeric" or "categorical", got ${JSON.stringify(type)}`, FORMAT_HINT, name);
    }
    const allowed = type === "numeric" ? NUMERIC_KEYS : CATEGORICAL_KEYS;
    for (const key of Object.keys(c)) {
      if (!allowed.includes(key)) {
        fail(`${path}: unknown key "${key}" (allowed for ${type} columns: ${allowed.join(", ")})`, "Remove the key or fix its spelling.", name);
      }
    }

    if (type === "numeric") {
      columns.push(parseNumeric(c, name, path, fail));
    } else {
      columns.push(parseCategorical(c, name, path, missing, fail));
    }
  });

  const schema: Schema = { columns, missing };
  if (top.outcome !== undefined) {
    const outcomeHint = `Name one of the schema's columns (${columns.map((c) => c.name).join(", ")}), or remove "outcome".`;
    if (typeof top.outcome !== "string") fail(`"outcome" must be the name of a column, got ${describeType(top.outcome)}`, outcomeHint);
    const outcome = top.outcome as string;
    if (!columns.some((c) => c.name === outcome)) fail(`"outcome" names column ${JSON.stringify(outcome)}, which is not in "columns"`, outcomeHint, outcome);
    schema.outcome = outcome;
  }
  return schema;
}

type Fail = (message: string, hint?: string, column?: string) => never;

function parseNumeric(c: Record<string, unknown>, name: string, path: string, fail: Fail): NumericColumn {
  const boundsHint = "Numeric columns need public bounds \"min\" and \"max\" (numbers, min <= max), agreed in advance and not taken from the data.";
  for (const key of ["min", "max"] as const) {
    if (c[key] === undefined) fail(`${path}: "${key}" is missing`, boundsHint, name);
    if (typeof c[key] !== "number") fail(`${path}: "${key}" must be a number, got ${describeType(c[key])}`, boundsHint, name);
    if (!Number.isFinite(c[key])) fail(`${path}: "${key}" must be a finite number`, boundsHint, name);
  }
  const min = c.min as number;
  const max = c.max as number;
  if (min > max) fail(`${path}: "min" (${min}) is greater than "max" (${max})`, boundsHint, name);

  let integer = false;
  if (c.integer !== undefined) {
    if (typeof c.integer !== "boolean") fail(`${path}: "integer" must be true or false, got ${describeType(c.integer)}`, FORMAT_HINT, name);
    integer = c.integer as boolean;
  }
  if (integer && Math.ceil(min) > Math.floor(max)) {
    fail(`${path}: integer column has no whole number in [${min}, ${max}]`, 'Widen the bounds or set "integer": false.', name);
  }

  const column: NumericColumn = { name, type: "numeric", min, max, integer };
  if (c.bins !== undefined) {
    const bins = c.bins;
    if (typeof bins !== "number" || !Number.isInteger(bins) || bins < 1 || bins > MAX_BINS) {
      fail(`${path}: "bins" must be a positive integer (at most ${MAX_BINS}), got ${JSON.stringify(bins)}`, 'Remove "bins" to use the default, or give a whole number such as 16.', name);
    }
    column.bins = bins as number;
  }
  if (c.step !== undefined) {
    const step = c.step;
    const stepHint = integer
      ? 'For an integer column "step" is a whole number >= 1 (values are ceil(min) + k·step); remove it for step 1.'
      : 'Give the measurement\'s resolution, e.g. "step": 0.1 for values recorded to one decimal (values are min + k·step), or remove "step" for a continuous column.';
    if (typeof step !== "number" || !Number.isFinite(step) || step <= 0) {
      fail(`${path}: "step" must be a positive finite number, got ${describeType(step)}`, stepHint, name);
    }
    const s = step as number;
    if (integer && !Number.isInteger(s)) fail(`${path}: "step" of an integer column must be a whole number >= 1, got ${s}`, stepHint, name);
    const span = integer ? Math.floor(max) - Math.ceil(min) : max - min;
    if (span / s > MAX_GRID_STEPS) {
      fail(
        `${path}: "step" ${s} is too fine for [${min}, ${max}]: (max - min) / step = ${span / s} exceeds ${MAX_GRID_STEPS}`,
        "Use a coarser step or narrower bounds, or remove \"step\" to treat the column as continuous.",
        name,
      );
    }
    // Grid values min + k·step must be distinct doubles (a step lost in the rounding of min is useless).
    if (!integer && s < 1e-12 * Math.max(Math.abs(min), Math.abs(max))) {
      fail(`${path}: "step" ${s} is too small relative to the bounds [${min}, ${max}] to be represented exactly`, "Use a coarser step.", name);
    }
    column.step = s;
  }
  return column;
}

function parseCategorical(c: Record<string, unknown>, name: string, path: string, missing: string[], fail: Fail): CategoricalColumn {
  const valuesHint = 'Categorical columns list their categories as strings, e.g. "values": ["0", "1"].';
  if (c.values === undefined) fail(`${path}: "values" is missing`, valuesHint, name);
  if (!Array.isArray(c.values)) fail(`${path}: "values" must be an array of strings, got ${describeType(c.values)}`, valuesHint, name);
  const raw = c.values as unknown[];
  if (raw.length === 0) fail(`${path}: "values" is empty`, valuesHint, name);
  const values: string[] = [];
  raw.forEach((v, k) => {
    if (typeof v !== "string") {
      const example = typeof v === "number" ? ` (write "${v}" in quotes)` : "";
      fail(`${path}: values[${k}] must be a string, got ${describeType(v)}${example}`, valuesHint, name);
    }
    const s = v as string;
    if (s.trim() !== s) {
      fail(`${path}: values[${k}] ${JSON.stringify(s)} has leading or trailing whitespace; cells are trimmed before matching, so it could never match`, "Remove the whitespace.", name);
    }
    if (values.includes(s)) fail(`${path}: "values" lists ${JSON.stringify(s)} twice`, "Each category must be listed once.", name);
    if (missing.includes(s)) {
      fail(
        `${path}: value ${JSON.stringify(s)} is also a missing token (missing: ${missing.map((m) => JSON.stringify(m)).join(", ")}), so a cell ${JSON.stringify(s)} would be ambiguous`,
        'Rename the category, or set the schema\'s "missing" list so that it does not contain this value.',
        name,
      );
    }
    values.push(s);
  });
  return { name, type: "categorical", values };
}

/**
 * sha256 (hex) of a canonical JSON encoding of the schema: keys in a fixed order, missing tokens sorted
 * (they are a set); column order and category order are kept (they define the encoding). A numeric
 * column's "step" is encoded after "bins" when it sets a grid other than the default (so schemas without
 * steps keep their fingerprints, and an integer column's explicit "step": 1 is the same as none); a declared
 * outcome likewise after "missing", only when there is one.
 */
export function schemaFingerprint(schema: Schema): string {
  const canonical = {
    columns: schema.columns.map((c) =>
      c.type === "numeric"
        ? {
            name: c.name,
            type: c.type,
            min: c.min,
            max: c.max,
            integer: c.integer,
            bins: c.bins ?? null,
            ...(c.step !== undefined && !(c.integer && c.step === 1) ? { step: c.step } : {}),
          }
        : { name: c.name, type: c.type, values: [...c.values] },
    ),
    missing: [...new Set(schema.missing)].sort(),
    ...(schema.outcome !== undefined ? { outcome: schema.outcome } : {}),
  };
  return createHash("sha256").update(JSON.stringify(canonical), "utf8").digest("hex");
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describeType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)})`;
  if (typeof v === "number") return `a number (${v})`;
  if (typeof v === "boolean") return `a boolean (${v})`;
  if (typeof v === "object") return "an object";
  return typeof v;
}

/** "line L, column C" for a JSON.parse error, when the engine's message gives a position. */
function jsonErrorPosition(text: string, message: string): string | undefined {
  const bomOffset = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let pos: number | undefined;
  const m = /at position (\d+)/.exec(message);
  if (m) pos = Number(m[1]) + bomOffset;
  else if (/Unexpected end of JSON input/.test(message)) pos = text.length;
  if (pos === undefined || pos > text.length) return undefined;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < pos; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${pos - lineStart + 1}`;
}
