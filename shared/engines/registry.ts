/**
 * The engines this build knows, by name. Studies record the engine's name, so names are permanent.
 */
import type { Engine } from "./engine.js";
import { independentEngine } from "./independent/engine.js";
import { neuralEngine } from "./neural/engine.js";
import { marginalEngine } from "./marginal/engine.js";
import { FedsynthError } from "../errors.js";

// A study that names no engine gets one chosen for it: engine-choice.ts.

const ENGINES: ReadonlyMap<string, Engine> = new Map<string, Engine>([
  [independentEngine.name, independentEngine],
  [neuralEngine.name, neuralEngine as Engine],
  [marginalEngine.name, marginalEngine as Engine],
]);

/** Names of all known engines, sorted. */
export function engineNames(): string[] {
  return [...ENGINES.keys()].sort();
}

/** The engine called `name`; throws FedsynthError("invalid-argument") listing the known engines otherwise. */
export function getEngine(name: string): Engine {
  const engine = ENGINES.get(name);
  if (!engine) {
    throw new FedsynthError("invalid-argument", `Unknown engine ${JSON.stringify(name)}`, {
      hint: `Known engines: ${engineNames().join(", ")}.`,
    });
  }
  return engine;
}
