/**
 * A model file as `fedsynth sample` reads it fastest: the coordinator's pooled model with whatever its engine
 * precomputes for sampling (Engine.serializeForSampling: the marginal engine's fitted model, seconds of
 * work that every `sample` run would otherwise redo). Done here, in the exporting process, rather than by
 * the coordinator, whose event loop serves every study and must not stall for a fit.
 */
import { decodeModelBundle, encodeModelBundle } from "../shared/engines/model-file.js";
import { getEngine } from "../shared/engines/registry.js";
import { parseSchema } from "../shared/schema/parse-schema.js";

/** `bundle` (a model file's bytes) with its body made for sampling; the same bytes when its engine has nothing to add. */
export function modelForSampling(bundle: Uint8Array, source: string): Uint8Array {
  const decoded = decodeModelBundle(bundle, source);
  const engine = getEngine(decoded.engine);
  if (!engine.serializeForSampling) return bundle;
  const model = engine.deserialize(decoded.body, parseSchema(decoded.schemaJson, `${source} (schema)`), decoded.engineConfig);
  return encodeModelBundle({ ...decoded, body: engine.serializeForSampling(model) });
}
