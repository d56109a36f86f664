/** The site's own checks, over a real local store and a real CSV: the coordinator cannot talk it into overspending. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import nacl from "tweetnacl";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalStore } from "./local-store.js";
import { TaskRunner } from "./task-runner.js";
import { committed } from "./budget.js";
import { Backoff } from "./backoff.js";
import { getEngine } from "../shared/engines/registry.js";
import { parseSchema } from "../shared/schema/parse-schema.js";
import { createLogger } from "../shared/telemetry/log.js";
import type { TaskAssignment } from "../shared/federation/task.js";
import type { JsonObject } from "../shared/engines/engine.js";
import { configureMarginal } from "../shared/engines/marginal/engine.js";

const SCHEMA_JSON = JSON.stringify({
  columns: [
    { name: "age", type: "numeric", min: 0, max: 100, integer: true },
    { name: "smoker", type: "categorical", values: ["no", "yes"] },
  ],
});

function taskFor(round: number, opts: { epsilon?: number; rounds?: number; studyId?: string } = {}): TaskAssignment {
  const engine = getEngine("independent");
  const schema = parseSchema(SCHEMA_JSON, "t");
  const privacy = { epsilon: opts.epsilon ?? 1, delta: 1e-5, rounds: opts.rounds ?? 2 };
  const config = engine.configure(schema, privacy);
  const ctx = { schema, privacy, config, round, roundConfig: {} };
  return {
    taskId: `task-${opts.studyId ?? "s1"}-${round}`,
    study: { studyId: opts.studyId ?? "s1", name: "heart", schemaJson: SCHEMA_JSON, engine: "independent", ...privacy, engineConfig: config },
    round, mechanisms: engine.charge(ctx), modelId: "", modelSha256: "", modelBytes: 0, updateLength: engine.updateLength(ctx), roundConfig: {},
  };
}

describe("TaskRunner", () => {
  let dir: string;
  let store: LocalStore;
  let lines: string[];
  const runner = (cap = 3, file = "data.csv") =>
    new TaskRunner({
      store, cap: { epsilon: cap, delta: 1e-4 }, dataFile: join(dir, file), log: createLogger("site", { write: (l) => lines.push(l) }),
      siteName: "test-site", signingSecretKey: nacl.sign.keyPair().secretKey,
      fetchModel: async () => { throw new Error("no model needed"); },
    });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fedsynth-site-"));
    writeFileSync(join(dir, "data.csv"), "age,smoker\n30,no\n41,yes\n55,no\n");
    writeFileSync(join(dir, "bad.csv"), "age,smoker\n30,no\n41,sometimes\n");
    store = new LocalStore(dir);
    lines = [];
  });
  afterEach(() => store.close());

  it("charges each round once and answers a repeated task from its store, without a new charge", async () => {
    const r = runner();
    const first = await r.run(taskFor(1));
    expect(first.kind).toBe("result");
    const again = await r.run(taskFor(1));
    expect(again).toMatchObject({ kind: "result", resent: true });
    if (first.kind === "result" && again.kind === "result") expect(again.sha256).toBe(first.sha256);
    expect(store.charges()).toHaveLength(1);
    const second = await r.run(taskFor(2));
    expect(second.kind).toBe("result");
    const charges = store.charges();
    expect(charges).toHaveLength(2);
    expect(charges[1].epsilonStudyTotal).toBeLessThanOrEqual(1);
    expect(charges[1].epsilonStudyTotal).toBeGreaterThan(0.99);
  });

  it("declines a study larger than what is left of its cap", async () => {
    const r = runner(1.5);
    expect((await r.run(taskFor(1, { epsilon: 1, studyId: "s1" }))).kind).toBe("result");
    const refused = await r.run(taskFor(1, { epsilon: 1, studyId: "s2" }));
    expect(refused).toMatchObject({ kind: "decline", reason: "budget-cap" });
    if (refused.kind === "decline") expect(refused.message).toMatch(/budget cap is epsilon 1.5 with 1 already spent or reserved by other studies \(0.5 left\)/);
    expect(committed(store)).toEqual({ epsilon: 1, delta: 1e-5 });
  });

  it("declines a round beyond the study's budget (a coordinator asking for more rounds)", async () => {
    const r = runner();
    for (const round of [1, 2]) expect((await r.run(taskFor(round))).kind).toBe("result");
    const third = await r.run(taskFor(3));
    expect(third).toMatchObject({ kind: "decline", reason: "budget-cap" });
    expect(store.charges()).toHaveLength(2);
  });

  it("declines a marginal round (annealed) whose own budget is more than the study has left, and takes the coordinator's planned one", async () => {
    // The coordinator's side is the engine itself (configure, planRound, aggregate), as in the coordinator.
    const engine = getEngine("marginal");
    const schema = parseSchema(SCHEMA_JSON, "t");
    const privacy = { epsilon: 1, delta: 1e-5, rounds: 4 };
    const config = JSON.parse(JSON.stringify(configureMarginal(schema, privacy, { annealing: "aim" }))) as JsonObject;
    const study = { studyId: "m1", name: "heart", schemaJson: SCHEMA_JSON, engine: "marginal", ...privacy, engineConfig: config };
    const task = (round: number, roundConfig: JsonObject, id = `m-${round}`): TaskAssignment => {
      const ctx = { schema, privacy, config, round, roundConfig };
      return { taskId: id, study, round, mechanisms: engine.charge(ctx), modelId: "", modelSha256: "", modelBytes: 0, updateLength: engine.updateLength(ctx), roundConfig };
    };
    const r = runner();
    let model = engine.init(schema, config);
    for (let round = 1; round <= 3; round++) {
      const roundConfig = engine.planRound(model, { schema, privacy, config, round });
      const out = await r.run(task(round, roundConfig));
      if (out.kind !== "result") throw new Error(`round ${round} declined: ${JSON.stringify(out)}`);
      model = engine.aggregate(model, new Float64Array(out.bytes.slice().buffer), 1, { schema, privacy, config, round, roundConfig });
    }
    const planned = engine.planRound(model, { schema, privacy, config, round: 4 });
    expect(planned.budget).toBeGreaterThan(0.5);
    expect(planned.budget).toBeLessThan(1);
    const greedy = await r.run(task(4, { ...planned, budget: 1 }, "m-4-greedy"));
    expect(greedy).toMatchObject({ kind: "decline", reason: "budget-cap" });
    if (greedy.kind === "decline") expect(greedy.message).toMatch(/over the study's budget 1/);
    expect(store.charges()).toHaveLength(3);
    const honest = await r.run(task(4, planned));
    expect(honest.kind).toBe("result");
    if (honest.kind === "result") {
      expect(honest.epsilonStudyTotal).toBeLessThanOrEqual(1);
      expect(honest.epsilonStudyTotal).toBeGreaterThan(0.999);
    }
  });

  it("declines a task whose stated charge is not what the site computes (e.g. less noise)", async () => {
    const task = taskFor(1);
    task.study.engineConfig = { ...task.study.engineConfig, sigma: 0.01 };
    const refused = await runner().run(task);
    expect(refused.kind).toBe("decline");
    expect(store.charges()).toHaveLength(0);
  });

  it("declines on bad data naming the column but never the value, and logs the details locally", async () => {
    const refused = await runner(3, "bad.csv").run(taskFor(1));
    expect(refused).toMatchObject({ kind: "decline", reason: "data-invalid" });
    if (refused.kind === "decline") {
      expect(refused.message).toMatch(/column 'smoker'/);
      expect(refused.message).not.toMatch(/sometimes/);
    }
    expect(lines.join("\n")).toMatch(/bad\.csv:3, column 'smoker': category "sometimes"/);
    expect(store.charges()).toHaveLength(0);
  });
});

describe("Backoff", () => {
  it("grows exponentially with full jitter up to the ceiling and resets", () => {
    const top = new Backoff(100, 1000, () => 1);
    expect([1, 2, 3, 4, 5, 6].map(() => top.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    top.reset();
    expect(top.next()).toBe(100);
    const bottom = new Backoff(100, 1000, () => 0);
    expect([1, 2, 3].map(() => bottom.next())).toEqual([50, 50, 50]);
  });
});
