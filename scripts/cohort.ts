/**
 * A synthetic multi-site cohort with real correlations, for measuring engines on data larger than the
 * bundled heart-disease federation: 16 mixed columns driven by a few latent factors (age, sex, a
 * metabolic factor, smoking), site shifts, about 5% missing cells in some columns, and a binary outcome
 * that is a logistic function of several columns. Deterministic from a seed.
 *
 *   node /tmp/fedsynth-measure/scripts/cohort.js OUT_DIR     (after compiling; see measure-neural.ts)
 * writes OUT_DIR/schema.json, OUT_DIR/site{1..5}.csv and, 20% held out, OUT_DIR/train/… and OUT_DIR/holdout/….
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { SeededRng, type Rng } from "../shared/random/rng.js";

export const COHORT_SITE_ROWS = [600, 1200, 2000, 3200, 5000];

export const COHORT_SCHEMA = {
  columns: [
    { name: "age", type: "numeric", min: 18, max: 95, integer: true },
    { name: "sex", type: "categorical", values: ["F", "M"] },
    { name: "bmi", type: "numeric", min: 15, max: 50, integer: false, step: 0.1 },
    { name: "sbp", type: "numeric", min: 80, max: 220, integer: true },
    { name: "dbp", type: "numeric", min: 40, max: 130, integer: true },
    { name: "chol", type: "numeric", min: 100, max: 400, integer: true },
    { name: "hdl", type: "numeric", min: 20, max: 100, integer: true },
    { name: "glucose", type: "numeric", min: 50, max: 300, integer: true },
    { name: "smoker", type: "categorical", values: ["never", "former", "current"] },
    { name: "diabetes", type: "categorical", values: ["0", "1"] },
    { name: "bp_meds", type: "categorical", values: ["0", "1"] },
    { name: "activity", type: "categorical", values: ["low", "moderate", "high"] },
    { name: "creatinine", type: "numeric", min: 0.3, max: 5, integer: false, step: 0.01 },
    { name: "region", type: "categorical", values: ["north", "south", "east", "west"] },
    { name: "visits", type: "numeric", min: 0, max: 20, integer: true },
    { name: "outcome", type: "categorical", values: ["0", "1"] },
  ],
  missing: ["", "NA"],
  outcome: "outcome",
};

export function normal(rng: Rng): number {
  const u = 1 - rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

export function pick(rng: Rng, weights: number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng.next() * total;
  for (let k = 0; k < weights.length; k++) {
    u -= weights[k];
    if (u < 0) return k;
  }
  return weights.length - 1;
}

export const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
export const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export function poisson(rng: Rng, lambda: number): number {
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = rng.next();
  while (p > limit) {
    k++;
    p *= rng.next();
  }
  return k;
}

/** One site's rows as CSV text; `site` (0-based) shifts age, region and outcome rates. */
export function siteCsv(site: number, rows: number, seed: number): string {
  const rng = new SeededRng(seed * 7919 + site);
  const names = COHORT_SCHEMA.columns.map((c) => c.name);
  const lines = [names.join(",")];
  const miss = (p: number, v: string) => (rng.next() < p ? "" : v);
  for (let i = 0; i < rows; i++) {
    const age = Math.round(clamp(52 + 4 * site + 15 * normal(rng), 18, 95));
    const male = rng.next() < 0.48 + 0.03 * site;
    const metabolic = normal(rng) + 0.02 * (age - 55);
    const smoker = pick(rng, age > 60 ? [0.45, 0.4, 0.15] : [0.5, 0.2, 0.3]);
    const activity = pick(rng, metabolic > 0.5 ? [0.55, 0.35, 0.1] : [0.25, 0.45, 0.3]);
    const bmi = clamp(27 + 3.5 * metabolic + 1.5 * (activity === 0 ? 1 : activity === 2 ? -1 : 0) + 2 * normal(rng), 15, 50);
    const sbp = Math.round(clamp(118 + 0.5 * (age - 50) + 6 * metabolic + (male ? 4 : 0) + 12 * normal(rng), 80, 220));
    const dbp = Math.round(clamp(0.45 * sbp + 18 + 7 * normal(rng), 40, 130));
    const chol = Math.round(clamp(200 + 0.6 * (age - 50) + 15 * metabolic + 32 * normal(rng), 100, 400));
    const hdl = Math.round(clamp(55 - (male ? 9 : 0) - 5 * metabolic + (activity === 2 ? 6 : 0) + 11 * normal(rng), 20, 100));
    const glucose = Math.round(clamp(95 + 18 * Math.max(0, metabolic) ** 1.5 + 12 * normal(rng), 50, 300));
    const diabetes = glucose > 125 || rng.next() < 0.03 ? 1 : 0;
    const bpMeds = rng.next() < sigmoid(-4 + 0.04 * (sbp - 110) + 0.03 * (age - 50)) ? 1 : 0;
    const creatinine = clamp(0.75 + (male ? 0.2 : 0) + 0.006 * (age - 50) + (diabetes ? 0.25 : 0) + 0.18 * Math.abs(normal(rng)), 0.3, 5);
    const region = pick(rng, [[0.6, 0.2, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.15, 0.15, 0.55, 0.15], [0.1, 0.1, 0.2, 0.6], [0.25, 0.25, 0.25, 0.25]][site % 5]);
    const visits = Math.min(20, poisson(rng, 1 + 0.05 * Math.max(0, age - 40) + 1.5 * diabetes + 0.8 * bpMeds));
    const risk = -3.2 + 0.045 * (age - 55) + (male ? 0.5 : 0) + 0.02 * (sbp - 130) + 0.006 * (chol - 200) - 0.025 * (hdl - 50) +
      0.8 * diabetes + [0, 0.3, 0.8][smoker] - [0, 0.2, 0.5][activity] + 0.15 * site - 0.1 * region;
    const outcome = rng.next() < sigmoid(risk) ? 1 : 0;
    lines.push([
      String(age), male ? "M" : "F", miss(0.04, bmi.toFixed(1)), miss(0.03, String(sbp)), miss(0.03, String(dbp)),
      miss(0.08, String(chol)), miss(0.1, String(hdl)), miss(0.05, String(glucose)), ["never", "former", "current"][smoker],
      String(diabetes), String(bpMeds), miss(0.15, ["low", "moderate", "high"][activity]), miss(0.06, creatinine.toFixed(2)),
      ["north", "south", "east", "west"][region], String(visits), String(outcome),
    ].join(","));
  }
  return lines.join("\n") + "\n";
}

/** Writes the schema, every site's full CSV, and an 80/20 train/holdout split of each. */
export function writeCohort(dir: string, seed = 1, siteRows = COHORT_SITE_ROWS): void {
  mkdirSync(resolve(dir, "train"), { recursive: true });
  mkdirSync(resolve(dir, "holdout"), { recursive: true });
  writeFileSync(resolve(dir, "schema.json"), JSON.stringify(COHORT_SCHEMA, null, 2) + "\n");
  siteRows.forEach((rows, s) => {
    const csv = siteCsv(s, rows, seed);
    writeFileSync(resolve(dir, `site${s + 1}.csv`), csv);
    const [header, ...body] = csv.trimEnd().split("\n");
    const cut = Math.round(0.8 * body.length); // rows are i.i.d., so the first 80% is a random split
    writeFileSync(resolve(dir, "train", `site${s + 1}.csv`), [header, ...body.slice(0, cut)].join("\n") + "\n");
    writeFileSync(resolve(dir, "holdout", `site${s + 1}.csv`), [header, ...body.slice(cut)].join("\n") + "\n");
  });
}

if (process.argv[1]?.endsWith("cohort.js") && process.argv[2]) {
  writeCohort(process.argv[2], Number(process.env.SEED ?? 1));
  console.log(`wrote ${process.argv[2]}`);
}
