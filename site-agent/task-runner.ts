/**
 * Decides whether to carry out a task and, if so, carries it out: the site checks the charge itself,
 * against its own cap, before any row is touched; the update and its charge are stored together before
 * anything leaves. Decline messages go to the coordinator, so they never quote a data value.
 */
import { FedsynthError, formatLocation } from "../shared/errors.js";
import { getEngine } from "../shared/engines/registry.js";
import type { Engine, TaskContext } from "../shared/engines/engine.js";
import { parseSchema, schemaFingerprint } from "../shared/schema/parse-schema.js";
import { readTable } from "../shared/schema/read-csv.js";
import type { Schema, Table } from "../shared/schema/schema.js";
import type { DeclineReason, StudySpec, TaskAssignment } from "../shared/federation/task.js";
import { SecureRng } from "../shared/random/rng.js";
import { sha256Hex, vectorToBytes } from "../shared/util/vector-bytes.js";
import type { Logger } from "../shared/telemetry/log.js";
import type { LocalStore } from "./local-store.js";
import type { Mechanism } from "../shared/privacy/mechanism.js";
import { Accountant } from "../shared/privacy/accountant.js";
import { encodeContribution } from "../shared/federation/secure-contribution.js";
import { signChargeClaim } from "../shared/federation/charge-statement.js";
import { maskedInputDigest } from "../shared/crypto/secagg/messages.js";
import { localTraining } from "./telemetry.js";
import type { SignedCharge } from "../shared/ledger/index.js";
import { admissionRefusal, sameMechanisms, taskCharge, type BudgetCap } from "./budget.js";

export type TaskOutcome =
  | { kind: "result"; taskId: string; bytes: Uint8Array; sha256: string; epsilonStudyTotal: number; delta: number; resent: boolean; signature: Uint8Array }
  | { kind: "decline"; taskId: string; studyId: string; reason: DeclineReason; message: string };

export type SecurePreparation =
  | {
    kind: "secure"; words: Uint32Array; clamped: number; mechanisms: Mechanism[]; epsilonTask: number; epsilonStudyTotal: number; delta: number;
    /** The study total should the coordinator collude with every other site (this site's noise share alone). */
    epsilonIfColluding: number;
  }
  | Extract<TaskOutcome, { kind: "decline" }>;

interface Checked {
  kind: "checked";
  engine: Engine;
  ctx: TaskContext;
  model: unknown;
  table: Table;
  ownCharge: Mechanism[];
  charge: { epsilonTask: number; epsilonStudyTotal: number };
}

export type Admission = { ok: true } | { ok: false; reason: DeclineReason; message: string };

export interface DataSummary {
  file: string;
  rows: number;
  clipped: Record<string, number>;
  warnings: string[];
}

export interface TaskRunnerOptions {
  store: LocalStore;
  siteName: string;
  /** The site's Ed25519 secret key: every charge statement is signed with it before the update leaves. */
  signingSecretKey: Uint8Array;
  cap: BudgetCap;
  dataFile: string;
  log: Logger;
  fetchModel(modelId: string, sha256: string): Promise<Uint8Array>;
  progress?(taskId: string, fraction: number, message: string): void;
}

export class TaskRunner {
  private tables = new Map<string, Table>();
  lastData?: DataSummary;

  constructor(private opts: TaskRunnerOptions) {}

  async run(task: TaskAssignment): Promise<TaskOutcome> {
    const { store, log } = this.opts;
    const spec = task.study;
    const released = store.getRelease(task.taskId);
    if (released) {
      log.info("resending an update already released for this task (no new charge)", { study: spec.studyId, round: task.round });
      // Stores written before charges were signed have no statement: sign the one this release made.
      const signature = released.signature ?? this.sign(task, released.charge.epsilonStudyTotal, released.charge.updateSha256).siteSignature;
      return {
        kind: "result", taskId: task.taskId, bytes: released.update, sha256: released.charge.updateSha256,
        epsilonStudyTotal: released.charge.epsilonStudyTotal, delta: released.charge.delta, resent: true, signature: Buffer.from(signature, "base64"),
      };
    }
    const checked = await this.check(task);
    if (checked.kind === "decline") return checked;
    const { engine, ctx, model, table, ownCharge, charge } = checked;
    if (engine.secure?.enabled(ctx.config)) {
      return this.decline(task, "charge-mismatch", "the study sums updates under secure aggregation, but this task came without a session: the site does not send its update in the clear");
    }
    this.opts.progress?.(task.taskId, 0.2, "computing the local update");
    const update = localTraining(task, () => engine.localUpdate(ctx, model, table, new SecureRng()));
    if (update.length !== task.updateLength) {
      throw new FedsynthError("internal", `engine ${spec.engine} produced ${update.length} values instead of ${task.updateLength}`);
    }
    const bytes = vectorToBytes(update);
    const sha256 = sha256Hex(bytes);
    const signature = this.record(task, ownCharge, charge, sha256, bytes);
    this.opts.progress?.(task.taskId, 0.9, "update charged; sending");
    return { kind: "result", taskId: task.taskId, bytes, sha256, epsilonStudyTotal: charge.epsilonStudyTotal, delta: spec.delta, resent: false, signature };
  }

  /**
   * A secure-aggregation task up to its masked input: the same checks as `run`, then the contribution on
   * the grid with this site's noise share. Nothing is recorded or sent yet: the charge is recorded by
   * `recordSecureRelease` when the masked input is about to leave.
   */
  async prepareSecure(task: TaskAssignment): Promise<SecurePreparation> {
    const { store } = this.opts;
    if (store.getRelease(task.taskId)) {
      return this.decline(task, "budget-cap",
        "this site already released its masked input for this round in an earlier secure-aggregation session; a new session would need fresh noise and a second charge, which the study's budget does not allow");
    }
    const checked = await this.check(task);
    if (checked.kind === "decline") return checked;
    const { engine, ctx, model, table, ownCharge, charge } = checked;
    if (!engine.secure?.enabled(ctx.config)) {
      return this.decline(task, "charge-mismatch", "the task is summed under secure aggregation but the study's engine config is not for it; the site declines");
    }
    this.opts.progress?.(task.taskId, 0.2, "computing the local contribution");
    const secure = engine.secure;
    const { words, clamped } = localTraining(task, () => {
      const contribution = secure.contribution(ctx, model, table);
      if (contribution.length !== task.updateLength) {
        throw new FedsynthError("internal", `engine ${task.study.engine} produced ${contribution.length} values instead of ${task.updateLength}`);
      }
      return encodeContribution(contribution, secure.grid(ctx));
    });
    const history = [...store.charges({ studyId: task.study.studyId }).flatMap((c) => c.mechanisms), ...ownCharge];
    return {
      kind: "secure", words, clamped, mechanisms: ownCharge, epsilonTask: charge.epsilonTask, epsilonStudyTotal: charge.epsilonStudyTotal, delta: task.study.delta,
      epsilonIfColluding: Accountant.collusionEpsilonOf(history, task.study.delta),
    };
  }

  /**
   * Records the charge and the masked words together, before they are sent; returns their hash and the
   * signature. The hash is the masked-input digest the secure-aggregation messages sign (a SHA-256 tree,
   * messages.ts), which the coordinator computes from what it receives and checks the charge against.
   */
  recordSecureRelease(task: TaskAssignment, prepared: Extract<SecurePreparation, { kind: "secure" }>, masked: Uint8Array): { sha256: string; signature: Uint8Array } {
    const words = masked.byteOffset % 4 === 0 ? new Uint32Array(masked.buffer, masked.byteOffset, masked.byteLength / 4) : new Uint32Array(masked.slice().buffer);
    const sha256 = Buffer.from(maskedInputDigest(words)).toString("hex");
    return { sha256, signature: this.record(task, prepared.mechanisms, prepared, sha256, masked) };
  }

  /** The signed charge statement of a release (ledger form; see shared/federation/charge-statement.ts). */
  private sign(task: TaskAssignment, epsilonStudyTotal: number, updateSha256: string): SignedCharge {
    const { statement, signature } = signChargeClaim({
      siteName: this.opts.siteName, studyId: task.study.studyId, round: task.round, taskId: task.taskId, mechanisms: task.mechanisms,
      delta: task.study.delta, epsilonStudyTotal, updateSha256,
    }, this.opts.signingSecretKey);
    return { charge: statement, siteSignature: signature };
  }

  /** The charge, its signed statement and the bytes that will leave, in one transaction; returns the signature. */
  private record(task: TaskAssignment, mechanisms: Mechanism[], charge: { epsilonTask: number; epsilonStudyTotal: number }, sha256: string, bytes: Uint8Array): Uint8Array {
    const spec = task.study;
    const signed = this.sign(task, charge.epsilonStudyTotal, sha256);
    this.opts.store.recordRelease({
      taskId: task.taskId, studyId: spec.studyId, studyName: spec.name, round: task.round, mechanisms, delta: spec.delta,
      epsilonTask: charge.epsilonTask, epsilonStudyTotal: charge.epsilonStudyTotal, updateSha256: sha256, at: Date.now(),
    }, bytes, signed);
    this.opts.log.info(`round ${task.round} of study '${spec.name}': update computed and charged`, {
      study: spec.studyId, epsilon_round: round6(charge.epsilonTask), epsilon_study_total: round6(charge.epsilonStudyTotal), delta: spec.delta,
    });
    return Buffer.from(signed.siteSignature, "base64");
  }

  private decline(task: TaskAssignment, reason: DeclineReason, message: string): Extract<TaskOutcome, { kind: "decline" }> {
    this.opts.log.warn(`declining round ${task.round} of study '${task.study.name}'`, { study: task.study.studyId, reason, message });
    return { kind: "decline", taskId: task.taskId, studyId: task.study.studyId, reason, message };
  }

  /** Everything a site checks before it touches its rows for a task, then the rows and the model. */
  private async check(task: TaskAssignment): Promise<Checked | Extract<TaskOutcome, { kind: "decline" }>> {
    const { store } = this.opts;
    const spec = task.study;
    const admission = await this.admit(spec);
    if (!admission.ok) return this.decline(task, admission.reason, admission.message);
    const engine = getEngine(spec.engine);
    const schema = parseSchema(spec.schemaJson, `study '${spec.name}' schema`);
    const ctx: TaskContext = {
      schema, privacy: { epsilon: spec.epsilon, delta: spec.delta, rounds: spec.rounds }, config: spec.engineConfig,
      round: task.round, roundConfig: task.roundConfig,
    };
    const ownCharge = engine.charge(ctx);
    if (!sameMechanisms(ownCharge, task.mechanisms)) {
      return this.decline(task, "charge-mismatch", "the task's stated privacy charge differs from the charge this site computes for it; the site declines");
    }
    if (engine.updateLength(ctx) !== task.updateLength) {
      return this.decline(task, "charge-mismatch", `the task asks for an update of ${task.updateLength} values; the engine produces ${engine.updateLength(ctx)}`);
    }
    const charge = taskCharge(store, spec, ownCharge);
    if (!charge.ok) return this.decline(task, "budget-cap", charge.message);
    const table = await this.table(schema);
    this.opts.progress?.(task.taskId, 0.1, "data loaded");
    let model: unknown = null;
    if (engine.needsModel(ctx)) {
      const bytes = await this.opts.fetchModel(task.modelId, task.modelSha256);
      model = engine.deserialize(bytes, schema, spec.engineConfig);
    }
    await engine.prepare?.();
    return { kind: "checked", engine, ctx, model, table, ownCharge, charge };
  }

  /**
   * Whether this site takes part in a study: the engine is known, the schema is valid, the study's budget
   * fits in what is left of the cap, and the data reads through the schema. Accepting reserves the budget.
   */
  async admit(spec: StudySpec): Promise<Admission> {
    const { store, log } = this.opts;
    const local = store.getStudy(spec.studyId);
    if (local?.state === "accepted") return { ok: true };
    if (local) return { ok: false, reason: "unsupported", message: `this site already closed study '${spec.name}' (${local.state})` };
    let schema: Schema;
    try {
      getEngine(spec.engine);
      schema = parseSchema(spec.schemaJson, `study '${spec.name}' schema`);
    } catch (err) {
      return { ok: false, reason: "unsupported", message: FedsynthError.from(err).message };
    }
    const refusal = admissionRefusal(this.opts.cap, store, spec);
    if (refusal) return { ok: false, reason: "budget-cap", message: refusal };
    try {
      await this.table(schema);
    } catch (err) {
      const e = FedsynthError.from(err);
      log.error(`the data file does not fit study '${spec.name}': ${e.describe()}`, { study: spec.studyId });
      const where = e.location?.column ? ` (column '${e.location.column}')` : "";
      return {
        ok: false, reason: "data-invalid",
        message: `the site's data does not match the study schema${where}; the site's operator has the details in the agent's log`,
      };
    }
    store.acceptStudy({ studyId: spec.studyId, name: spec.name, epsilon: spec.epsilon, delta: spec.delta, rounds: spec.rounds }, Date.now());
    log.info(`accepted study '${spec.name}'`, { study: spec.studyId, epsilon: spec.epsilon, delta: spec.delta, rounds: spec.rounds });
    return { ok: true };
  }

  /** Reads the data file through the study schema once per schema. */
  private async table(schema: Schema): Promise<Table> {
    const key = schemaFingerprint(schema);
    const cached = this.tables.get(key);
    if (cached) return cached;
    const { log, dataFile } = this.opts;
    const result = await readTable(dataFile, schema);
    for (const w of result.warnings) log.warn(w.location ? `${formatLocation(w.location)}: ${w.message}` : w.message);
    log.info("data read through the study schema", { file: dataFile, rows: result.table.rowCount });
    this.lastData = {
      file: dataFile, rows: result.table.rowCount, clipped: result.clipped, warnings: result.warnings.map((w) => w.message),
    };
    this.tables.set(key, result.table);
    return result.table;
  }
}

function round6(x: number): number {
  return Number(x.toPrecision(6));
}
