/** A model file read from disk as `fedsynth sample` and `fedsynth model verify` both need it: its bundle, engine, schema and model. */
import { existsSync, readFileSync } from "node:fs";
import { decodeModelBundle, type ModelBundle } from "../shared/engines/model-file.js";
import { getEngine } from "../shared/engines/registry.js";
import type { Engine } from "../shared/engines/engine.js";
import { parseSchema } from "../shared/schema/parse-schema.js";
import type { Schema } from "../shared/schema/schema.js";
import { FedsynthError } from "../shared/errors.js";

export interface ModelFile {
  /** The file's bytes, as read. */
  bytes: Uint8Array;
  bundle: ModelBundle;
  engine: Engine;
  schema: Schema;
  model: unknown;
}

export function readModelFile(path: string): ModelFile {
  if (!existsSync(path)) throw new FedsynthError("not-found", `no model file at ${path}`, { hint: "export one with `fedsynth model export`" });
  const bytes = readFileSync(path);
  const bundle = decodeModelBundle(bytes, path);
  const engine = getEngine(bundle.engine);
  const schema = parseSchema(bundle.schemaJson, `${path} (schema)`);
  return { bytes, bundle, engine, schema, model: engine.deserialize(bundle.body, schema, bundle.engineConfig) };
}
