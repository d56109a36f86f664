/** The checks every engine makes of a study's schema and budget before it configures anything. */
import type { StudyPrivacy } from "./engine.js";
import type { Schema } from "../schema/schema.js";
import { FedsynthError } from "../errors.js";

export function checkSchema(schema: Schema): void {
  if (!schema || !Array.isArray(schema.columns) || schema.columns.length === 0) {
    throw new FedsynthError("invalid-schema", "The schema has no columns", { hint: "Describe at least one column." });
  }
}

/** `rounds` is the engine's own limit on rounds and `roundsHint` what it advises about them. */
export function checkPrivacy(privacy: StudyPrivacy, rounds: { max: number; hint: string }): void {
  const invalid = (message: string, hint: string) => new FedsynthError("invalid-argument", message, { hint });
  const { epsilon, delta, rounds: n } = privacy ?? ({} as StudyPrivacy);
  if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon <= 0) {
    throw invalid(`The study's epsilon must be a finite number > 0, got ${String(epsilon)}`, "Choose an epsilon such as 1.");
  }
  if (typeof delta !== "number" || !Number.isFinite(delta) || delta <= 0 || delta >= 1) {
    throw invalid(`The study's delta must lie strictly between 0 and 1, got ${String(delta)}`, "Choose a small delta such as 1e-5.");
  }
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > rounds.max) {
    throw invalid(`The number of rounds must be a whole number from 1 to ${rounds.max}, got ${String(n)}`, rounds.hint);
  }
}
