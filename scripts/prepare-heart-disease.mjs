#!/usr/bin/env node
/**
 * Builds the bundled demo data examples/heart-disease/{cleveland,hungary,switzerland,va}.csv from the
 * original UCI Heart Disease files ("processed.*.data").
 *
 *   node scripts/prepare-heart-disease.mjs [SOURCE_DIR]
 *
 * With SOURCE_DIR, the four original files and heart-disease.names are first copied byte for byte into
 * examples/heart-disease/original/. Without it, the copies already in original/ are used. Either way the
 * originals are checked against pinned sha256 checksums before conversion.
 *
 * Conversion: a header row is added; "?" becomes an empty field; numbers are written without a
 * spurious ".0" ("63.0" → "63", ".7" → "0.7", "2.3" stays "2.3"); and a 0 in chol or trestbps, which
 * UCI uses for "not measured" (Switzerland has chol = 0 in every row), becomes an empty field.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(repo, "examples", "heart-disease");
const originalDir = join(outDir, "original");

const COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca", "thal", "num"];
/** Columns where UCI records a value that was not measured as 0. */
const ZERO_IS_MISSING = new Set(["trestbps", "chol"]);

const SITES = [
  { file: "processed.cleveland.data", out: "cleveland.csv", rows: 303, sha256: "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8" },
  { file: "processed.hungarian.data", out: "hungary.csv", rows: 294, sha256: "d1ad108f785768cd3d7e82dc522e6f5a61eea93cccfb3a46ee8076f73fc3d796" },
  { file: "processed.switzerland.data", out: "switzerland.csv", rows: 123, sha256: "834a405ccf5b66ab4056bb77794adc8df0b7125186454c0a1d002d33c6c3b314" },
  { file: "processed.va.data", out: "va.csv", rows: 200, sha256: "e7c93d8d0d2acdadfa4c5e8de768e2191e7f618b952e29623f1f0d5949ff6b8f" },
];
const NAMES = { file: "heart-disease.names", sha256: "ec7ed5aa4ed8321097808f47b836301c2a0c36f3bb09c40b8b43b622363e6b61" };

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;

function die(message) {
  console.error(`prepare-heart-disease: ${message}`);
  process.exit(1);
}

function sha256(buf) {
  return createHash("sha256").update(buf).digest("hex");
}

const sourceDir = process.argv[2] ? resolve(process.argv[2]) : undefined;
if (sourceDir) {
  mkdirSync(originalDir, { recursive: true });
  for (const { file } of [...SITES, NAMES]) {
    const from = join(sourceDir, file);
    if (!existsSync(from)) die(`${from} not found`);
    const to = join(originalDir, file);
    rmSync(to, { force: true }); // the source files may be read-only; do not carry the mode over
    writeFileSync(to, readFileSync(from));
  }
}

for (const { file, sha256: expected } of [...SITES, NAMES]) {
  const path = join(originalDir, file);
  if (!existsSync(path)) die(`${path} not found; run with the directory of the UCI files as argument`);
  const actual = sha256(readFileSync(path));
  if (actual !== expected) die(`${path}: sha256 ${actual} differs from the pinned ${expected}`);
}

for (const site of SITES) {
  const text = readFileSync(join(originalDir, site.file), "latin1");
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length !== site.rows) die(`${site.file}: expected ${site.rows} rows, found ${lines.length}`);
  const out = [COLUMNS.join(",")];
  lines.forEach((line, i) => {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length !== COLUMNS.length) die(`${site.file}:${i + 1}: expected ${COLUMNS.length} fields, found ${fields.length}`);
    out.push(
      fields
        .map((f, j) => {
          if (f === "?") return "";
          if (!NUMBER_RE.test(f)) die(`${site.file}:${i + 1}, column '${COLUMNS[j]}': unexpected value "${f}"`);
          const v = Number(f);
          if (v === 0 && ZERO_IS_MISSING.has(COLUMNS[j])) return "";
          return String(v === 0 ? 0 : v);
        })
        .join(","),
    );
  });
  writeFileSync(join(outDir, site.out), out.join("\n") + "\n");
  console.log(`${site.out}: ${lines.length} rows`);
}
