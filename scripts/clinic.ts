/**
 * A second generated federation, made after every engine default was chosen and never used to choose one:
 * hospital admissions rather than a cardiovascular cohort, so that the engines are measured on data
 * their settings were not tuned on. 12 columns (5 numeric, skewed and bounded; 7 categorical, one of 5
 * values), 4 sites of 250–2,500 rows whose wards and case mix differ, missing values that depend on the
 * site and the severity, dependence through thresholds and interactions rather than linear terms, and a
 * three-valued outcome (discharge: home, rehabilitation, died). Deterministic from a seed.
 */
import { SeededRng } from "../shared/random/rng.js";
import { clamp, normal, pick, poisson, sigmoid } from "./cohort.js";

export const CLINIC_SITE_ROWS = [250, 700, 1400, 2500];

export const CLINIC_SCHEMA = {
  columns: [
    { name: "age", type: "numeric", min: 0, max: 100, integer: true },
    { name: "sex", type: "categorical", values: ["F", "M"] },
    { name: "ward", type: "categorical", values: ["medical", "surgical", "cardiac", "respiratory", "trauma"] },
    { name: "severity", type: "categorical", values: ["mild", "moderate", "severe"] },
    { name: "crp", type: "numeric", min: 0, max: 300, integer: false, step: 0.1 },
    { name: "wbc", type: "numeric", min: 1, max: 40, integer: false, step: 0.1 },
    { name: "temp", type: "numeric", min: 34, max: 42, integer: false, step: 0.1 },
    { name: "icu", type: "categorical", values: ["0", "1"] },
    { name: "los", type: "numeric", min: 0, max: 60, integer: true },
    { name: "insurance", type: "categorical", values: ["public", "private", "none"] },
    { name: "prior_admissions", type: "categorical", values: ["0", "1", "2+"] },
    { name: "discharge", type: "categorical", values: ["home", "rehab", "died"] },
  ],
  missing: [""],
  outcome: "discharge",
};

/** One site's rows as CSV text; `site` (0-based) sets its wards, its case mix and how often it misses lab values. */
export function clinicSiteCsv(site: number, rows: number, seed: number): string {
  const rng = new SeededRng(seed * 104_729 + 17 * site + 3);
  const lines = [CLINIC_SCHEMA.columns.map((c) => c.name).join(",")];
  const wards = [[0.5, 0.3, 0.1, 0.1, 0], [0.3, 0.3, 0.2, 0.1, 0.1], [0.25, 0.2, 0.3, 0.15, 0.1], [0.3, 0.15, 0.1, 0.35, 0.1]][site % 4];
  for (let i = 0; i < rows; i++) {
    const ward = pick(rng, wards);
    const age = Math.round(clamp(ward === 4 ? 35 + 20 * normal(rng) : 62 + 4 * site + 17 * normal(rng), 0, 100));
    const male = rng.next() < (ward === 4 ? 0.7 : 0.47);
    const frailty = normal(rng) + 0.04 * Math.max(0, age - 60);
    const severity = frailty + (ward === 3 ? 0.6 : ward === 4 ? 0.4 : 0) + 0.5 * normal(rng) > 1.2 ? 2 : frailty + normal(rng) > 0.3 ? 1 : 0;
    const crp = clamp(Math.exp(1.8 + 0.9 * severity + (ward === 3 ? 0.5 : 0) + 0.7 * normal(rng)), 0, 300);
    const wbc = clamp(7 + 2.5 * severity + 0.02 * crp + 2 * normal(rng), 1, 40);
    const temp = clamp(36.9 + (crp > 50 ? 0.9 : 0.1) + 0.4 * normal(rng), 34, 42);
    const icu = rng.next() < sigmoid(-4 + 1.6 * severity + (crp > 100 && age > 70 ? 1.5 : 0) + (ward === 2 ? 0.8 : 0)) ? 1 : 0;
    const los = Math.min(60, poisson(rng, 2 + 2.5 * severity + 6 * icu + 0.05 * Math.max(0, age - 50)));
    const insurance = pick(rng, age >= 65 ? [0.85, 0.12, 0.03] : [0.45, 0.4, 0.15]);
    const prior = Math.min(2, poisson(rng, 0.3 + 0.4 * Math.max(0, frailty)));
    const died = sigmoid(-5.2 + 0.05 * (age - 60) + 1.1 * severity + 1.4 * icu + (insurance === 2 ? 0.6 : 0));
    const rehab = sigmoid(-2.2 + 0.04 * (age - 60) + 0.08 * los + (ward === 4 ? 1.2 : 0) - 0.6 * (male ? 1 : 0));
    const u = rng.next();
    const discharge = u < died ? 2 : u < died + (1 - died) * rehab ? 1 : 0;
    // Lab values go missing at some sites more than others, and less for the severe (they are always tested).
    const labMissing = [0.02, 0.08, 0.15, 0.05][site % 4] * (severity === 2 ? 0.3 : 1);
    const lab = (v: number) => (rng.next() < labMissing ? "" : v.toFixed(1));
    lines.push([
      String(age), male ? "M" : "F", CLINIC_SCHEMA.columns[2].values![ward], ["mild", "moderate", "severe"][severity], lab(crp), lab(wbc),
      rng.next() < 0.03 ? "" : temp.toFixed(1), String(icu), String(los), rng.next() < 0.06 ? "" : ["public", "private", "none"][insurance],
      ["0", "1", "2+"][prior], ["home", "rehab", "died"][discharge],
    ].join(","));
  }
  return lines.join("\n") + "\n";
}
