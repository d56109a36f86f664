/** Validation of an operator's request to create a study: every mistake is named before anything is stored. */
import { FedsynthError } from "../../shared/errors.js";
import type { BudgetSplit } from "../../shared/engines/engine.js";

export interface CreateStudyInput {
  name: string;
  schemaJson: string;
  engine: string;
  epsilon: number;
  delta: number;
  /** 0: the engine's default. */
  rounds: number;
  sites: string[];
  /** 0: all invited sites. */
  minSites: number;
  /** 0: the coordinator's default. */
  roundDeadlineSeconds: number;
  /** "auto" (the default): on for 3 or more sites when the engine supports it. */
  secureAggregation?: "auto" | "on" | "off";
  /** t; 0 or absent: the default ⌈2n/3⌉. */
  secureThreshold?: number;
  /** The cohort size the consortium declares (public), for the default engine choice; 0 or absent: not declared. */
  expectedRows?: number;
  /** How the rounds share each site's budget; absent: "equal". "annealed" only for engines that support it. */
  budgetSplit?: BudgetSplit;
}

const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_ROUNDS = 10_000;

export function validateSiteName(name: string, what = "site name"): void {
  if (!SITE_NAME.test(name)) {
    throw new FedsynthError("invalid-argument", `${what} ${JSON.stringify(name)} is not valid`, {
      hint: "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    });
  }
}

export function validateStudyInput(input: CreateStudyInput): void {
  const bad = (message: string, hint: string) => new FedsynthError("invalid-argument", message, { hint });
  if (!input.name.trim()) throw bad("the study has no name", "give it a short name, e.g. --name heart-2026");
  if (!(Number.isFinite(input.epsilon) && input.epsilon > 0)) {
    throw bad(`epsilon must be a positive number, got ${input.epsilon}`, "each site's total budget for the study, e.g. --epsilon 1");
  }
  if (!(Number.isFinite(input.delta) && input.delta > 0 && input.delta < 1)) {
    throw bad(`delta must be between 0 and 1 (exclusive), got ${input.delta}`, "use a value well below 1/rows, e.g. --delta 1e-5");
  }
  if (!(Number.isInteger(input.rounds) && input.rounds >= 0 && input.rounds <= MAX_ROUNDS)) {
    throw bad(`rounds must be a whole number from 1 to ${MAX_ROUNDS} (or 0 for the engine's default), got ${input.rounds}`, "e.g. --rounds 3");
  }
  if (input.sites.length === 0) throw bad("the study invites no sites", "name at least one site");
  const seen = new Set<string>();
  for (const s of input.sites) {
    validateSiteName(s);
    if (seen.has(s)) throw bad(`site ${s} is invited twice`, "list each site once");
    seen.add(s);
  }
  if (!(Number.isInteger(input.minSites) && input.minSites >= 0 && input.minSites <= input.sites.length)) {
    throw bad(`the minimum number of sites per round must be from 1 to ${input.sites.length} (the invited sites), got ${input.minSites}`,
      "leave it at 0 to require every invited site");
  }
  if (input.expectedRows !== undefined && !(Number.isSafeInteger(input.expectedRows) && input.expectedRows >= 0)) {
    throw bad(`the expected number of rows must be a whole number, got ${input.expectedRows}`, "the cohort size all sites hold together, as the study protocol declares it, e.g. --expected-rows 5000");
  }
  if (input.budgetSplit !== undefined && input.budgetSplit !== "equal" && input.budgetSplit !== "annealed") {
    throw bad(`the budget split must be equal or annealed, got ${JSON.stringify(input.budgetSplit)}`, "leave it out for the engine's default (equal), or --budget-split annealed with the marginal engine");
  }
  if (!(Number.isInteger(input.roundDeadlineSeconds) && input.roundDeadlineSeconds >= 0)) {
    throw bad(`the round deadline must be a whole number of seconds, got ${input.roundDeadlineSeconds}`, "e.g. 600");
  }
}
