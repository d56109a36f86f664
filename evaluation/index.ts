/** The fidelity evaluation behind `fedsynth evaluate`. */
export { evaluate, type EvaluateInput } from "./evaluate.js";
export { formatReport, type FormatOptions } from "./format-report.js";
export { concatTables } from "./tables.js";
export type * from "./report.js";
