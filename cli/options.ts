/** Parsing of command-line values, with errors that say which flag is wrong and what it takes. */
import { Option } from "commander";
import { FedsynthError } from "../shared/errors.js";

export function parsePositive(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw usage(`${flag} must be a positive number, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function parseProbability(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || n >= 1) throw usage(`${flag} must be a number between 0 and 1 (exclusive), got ${JSON.stringify(value)}`);
    return n;
  };
}

export function parseCount(flag: string, min = 1) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw usage(`${flag} must be a whole number of at least ${min}, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function usage(message: string, hint?: string): FedsynthError {
  return new FedsynthError("invalid-argument", message, { hint: hint ?? "see --help" });
}

/** `--budget-split`, as `study create` and `simulate` both take it. */
export function budgetSplitOption(): Option {
  return new Option("--budget-split <split>", "how the rounds share each site's budget: equal (default), or annealed (marginal engine; with 4 or more rounds the coordinator sets each selected round's share as the study goes, the last taking exactly what is left)").choices(["equal", "annealed"]);
}
