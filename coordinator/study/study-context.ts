/** The engine, parsed schema and task context of a study, built once per study and reused. */
import { getEngine } from "../../shared/engines/registry.js";
import type { Engine, TaskContext, JsonObject } from "../../shared/engines/engine.js";
import { parseSchema } from "../../shared/schema/parse-schema.js";
import type { Schema } from "../../shared/schema/schema.js";
import type { StudySpec } from "../../shared/federation/task.js";
import type { StudyRecord } from "../store/records.js";

export interface StudyContext {
  engine: Engine;
  schema: Schema;
  spec: StudySpec;
  taskContext(round: number, roundConfig: JsonObject): TaskContext;
}

export function specOf(study: StudyRecord): StudySpec {
  return {
    studyId: study.studyId, name: study.name, schemaJson: study.schemaJson, engine: study.engine,
    epsilon: study.epsilon, delta: study.delta, rounds: study.rounds, engineConfig: study.engineConfig,
  };
}

export class StudyContexts {
  private cache = new Map<string, StudyContext>();

  get(study: StudyRecord): StudyContext {
    let ctx = this.cache.get(study.studyId);
    if (!ctx) {
      const engine = getEngine(study.engine);
      const schema = parseSchema(study.schemaJson, `study ${study.studyId} schema`);
      const privacy = {
        epsilon: study.epsilon, delta: study.delta, rounds: study.rounds,
        ...(study.secureThreshold > 0 ? { secureAggregation: { threshold: study.secureThreshold, sites: study.participants.length } } : {}),
      };
      ctx = {
        engine, schema, spec: specOf(study),
        taskContext: (round, roundConfig) => ({ schema, privacy, config: study.engineConfig, round, roundConfig }),
      };
      this.cache.set(study.studyId, ctx);
    }
    return ctx;
  }
}
