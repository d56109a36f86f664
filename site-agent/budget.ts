/**
 * The site's own budget cap, enforced whatever the coordinator asks. Across studies the site composes
 * budgets by simple addition (a valid, conservative bound): a running study reserves its whole budget,
 * a closed one counts what it actually charged. Within a study, charges are composed exactly by the
 * accountant over the study's recorded mechanisms.
 */
import { Accountant } from "../shared/privacy/accountant.js";
import type { Mechanism } from "../shared/privacy/mechanism.js";
import type { StudySpec } from "../shared/federation/task.js";
import type { LocalStore } from "./local-store.js";

export interface BudgetCap {
  epsilon: number;
  delta: number;
}

export interface Commitment {
  epsilon: number;
  delta: number;
}

const SLACK = 1e-9;

/** What the site has spent or reserved, over every study except `excludeStudyId`. */
export function committed(store: LocalStore, excludeStudyId?: string): Commitment {
  let epsilon = 0;
  let delta = 0;
  for (const s of store.listStudies()) {
    if (s.studyId === excludeStudyId) continue;
    if (s.state === "accepted") {
      epsilon += s.epsilon;
      delta += s.delta;
      continue;
    }
    const history = store.charges({ studyId: s.studyId }).flatMap((c) => c.mechanisms);
    if (history.length > 0) {
      epsilon += Accountant.epsilonOf(history, s.delta);
      delta += s.delta;
    }
  }
  return { epsilon, delta };
}

/** Null when the site can take the study on; otherwise why not, in words for both sides. */
export function admissionRefusal(cap: BudgetCap, store: LocalStore, spec: StudySpec): string | null {
  const used = committed(store, spec.studyId);
  const fmt = (x: number) => Number(x.toPrecision(6)).toString();
  if (used.epsilon + spec.epsilon > cap.epsilon * (1 + SLACK)) {
    return `study '${spec.name}' asks for epsilon ${fmt(spec.epsilon)} per site, but this site's budget cap is epsilon ${fmt(cap.epsilon)}` +
      ` with ${fmt(used.epsilon)} already spent or reserved by other studies (${fmt(Math.max(0, cap.epsilon - used.epsilon))} left);` +
      " the site declines. Ask the consortium for a smaller budget, or raise the site's --epsilon-cap";
  }
  if (used.delta + spec.delta > cap.delta * (1 + SLACK)) {
    return `study '${spec.name}' asks for delta ${spec.delta} per site, but this site's cap is delta ${cap.delta}` +
      ` with ${used.delta} already spent or reserved; the site declines. Ask for a smaller delta, or raise --delta-cap`;
  }
  return null;
}

/** The study total after this task, or why the task must be refused. */
export function taskCharge(store: LocalStore, spec: StudySpec, mechanisms: Mechanism[]):
  { ok: true; epsilonTask: number; epsilonStudyTotal: number } | { ok: false; message: string } {
  const history = store.charges({ studyId: spec.studyId }).flatMap((c) => c.mechanisms);
  const epsilonStudyTotal = Accountant.epsilonOf([...history, ...mechanisms], spec.delta);
  if (epsilonStudyTotal > spec.epsilon * (1 + SLACK)) {
    return {
      ok: false,
      message: `this task would bring the site's spend in study '${spec.name}' to epsilon ${epsilonStudyTotal}, over the study's budget ${spec.epsilon}; the site declines`,
    };
  }
  return { ok: true, epsilonTask: Accountant.epsilonOf(mechanisms, spec.delta), epsilonStudyTotal };
}

/** Whether two mechanism lists describe the same charge (same kinds and parameters, compared per kind). */
export function sameMechanisms(a: Mechanism[], b: Mechanism[]): boolean {
  if (a.length !== b.length) return false;
  const close = (x: number, y: number) => Math.abs(x - y) <= 1e-12 * Math.max(1, Math.abs(x), Math.abs(y));
  /** Relative: sampling rates are small, and a small absolute difference can be a large relative one. */
  const closeRelative = (x: number, y: number) => Math.abs(x - y) <= 1e-12 * Math.max(Math.abs(x), Math.abs(y));
  return a.every((m, i) => {
    const n = b[i];
    switch (m.kind) {
      case "gaussian":
        return n.kind === "gaussian" && close(m.l2Sensitivity, n.l2Sensitivity) && close(m.sigma, n.sigma) && m.repetitions === n.repetitions;
      case "subsampled-gaussian":
        return n.kind === "subsampled-gaussian" && closeRelative(m.samplingRate, n.samplingRate) && close(m.noiseMultiplier, n.noiseMultiplier) &&
          m.steps === n.steps && close(m.clipNorm, n.clipNorm);
      case "distributed-discrete-gaussian":
        return n.kind === "distributed-discrete-gaussian" && close(m.l2Sensitivity, n.l2Sensitivity) && close(m.sigma, n.sigma) &&
          m.dimension === n.dimension && m.sites === n.sites && m.repetitions === n.repetitions;
      default:
        return false;
    }
  });
}
