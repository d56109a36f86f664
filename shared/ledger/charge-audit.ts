/**
 * The checks of one charge entry, against what earlier entries established: who the site is (its
 * enrolment's key), what the study allows (its creation entry), and what the site has spent so far
 * (recomputed by the BudgetTracker). A recorded epsilon may be higher than the recomputed one — that
 * only overstates the spend — but never lower beyond EPSILON_TOLERANCE.
 */
import { canonicalize } from "./canonical-json.js";
import type { ChargeEntry, ChargeStatement, EnrolmentBody, StudyCreatedBody } from "./entry.js";
import type { BudgetTracker } from "./budget-tracker.js";
import type { EpsilonCache } from "./epsilon-cache.js";
import { chargeSigningBytes, type SignatureCheck } from "./signatures.js";

/** Relative tolerance for recorded epsilons and for budgets, as in site-agent/budget.ts. */
export const EPSILON_TOLERANCE = 1e-9;

export interface ChargeContext {
  sites: ReadonlyMap<string, { body: EnrolmentBody; seq: number }>;
  studies: ReadonlyMap<string, { body: StudyCreatedBody; seq: number }>;
  /** Task ids already charged, by `${siteName}\n${studyId}\n${taskId}`, with the seq that charged them. */
  chargedTasks: Map<string, number>;
  cache: EpsilonCache;
  budgets: BudgetTracker;
  checkSignature: SignatureCheck;
}

/** Canonical texts of the charge's parts, made once for the hash, the signature and the cache. */
export interface ChargeTexts {
  statement: string;
  mechanisms: string;
}

/** The statement's text with its mechanisms' text inside it, each encoded once. */
export function chargeTexts(charge: ChargeStatement): ChargeTexts {
  const mechanisms = canonicalize(charge.mechanisms);
  return { mechanisms, statement: canonicalize(charge, new Map([[charge.mechanisms, mechanisms]])) };
}

const fmt = (x: number) => String(Number(x.toPrecision(12)));

/** Null if the charge holds; otherwise why not. Counts the charge in ctx only when it holds. */
export function chargeProblem(entry: ChargeEntry, texts: ChargeTexts, ctx: ChargeContext): string | null {
  const c = entry.body.charge;
  const site = ctx.sites.get(c.siteName);
  if (!site) return `charge from site "${c.siteName}", which has no earlier enrolment entry`;
  if (!ctx.checkSignature(chargeSigningBytes(c, texts.statement), entry.siteSignature, site.body.publicKey)) {
    return `the site signature does not verify with the key site "${c.siteName}" enrolled at seq ${site.seq}`;
  }
  const study = ctx.studies.get(c.studyId);
  if (!study) return `charge in study "${c.studyId}", which has no earlier study-created entry`;
  const spec = study.body;
  if (!spec.sites.includes(c.siteName)) return `site "${c.siteName}" is charged in study "${c.studyId}" but was not invited to it`;
  if (c.delta !== spec.delta) return `the charge is at delta ${c.delta}, but study "${c.studyId}" has delta ${spec.delta}`;
  if (c.round > spec.rounds) return `the charge is for round ${c.round} of study "${c.studyId}", which has ${spec.rounds} rounds`;
  const taskKey = `${c.siteName}\n${c.studyId}\n${c.taskId}`;
  const earlier = ctx.chargedTasks.get(taskKey);
  if (earlier !== undefined) return `task "${c.taskId}" of site "${c.siteName}" was already charged at seq ${earlier}`;

  const key = texts.mechanisms; // = EpsilonCache.keyOf(c.mechanisms)
  const epsilonTask = ctx.cache.epsilonOf(c.mechanisms, c.delta, key);
  if (isBelow(c.epsilonTask, epsilonTask)) {
    return `the recorded epsilonTask ${c.epsilonTask} is below ${fmt(epsilonTask)}, recomputed from the recorded mechanisms`;
  }
  const spend = ctx.budgets.preview(c.siteName, c.studyId, c.mechanisms, key, c.delta);
  if (isBelow(c.epsilonStudyTotal, spend.studyEpsilon)) {
    return `the recorded epsilonStudyTotal ${c.epsilonStudyTotal} is below ${fmt(spend.studyEpsilon)}, recomputed from all of site "${c.siteName}"'s charges in study "${c.studyId}"`;
  }
  if (isOver(spend.studyEpsilon, spec.epsilon)) {
    return `with this charge, site "${c.siteName}" has spent epsilon ${fmt(spend.studyEpsilon)} in study "${c.studyId}", over the study's budget ${spec.epsilon}`;
  }
  const studyCap = spec.siteCaps?.[c.siteName];
  if (studyCap && isOver(spend.studyEpsilon, studyCap.epsilon)) {
    return `with this charge, site "${c.siteName}" has spent epsilon ${fmt(spend.studyEpsilon)} in study "${c.studyId}", over its cap ${studyCap.epsilon} for this study`;
  }
  if (studyCap && isOver(c.delta, studyCap.delta)) {
    return `study "${c.studyId}" charges site "${c.siteName}" at delta ${c.delta}, over its cap ${studyCap.delta} for this study`;
  }
  const cap = site.body.cap;
  if (cap && isOver(spend.siteEpsilon, cap.epsilon)) {
    return `with this charge, site "${c.siteName}" has spent epsilon ${fmt(spend.siteEpsilon)} over all its studies, over the cap ${cap.epsilon} it enrolled with`;
  }
  if (cap && isOver(spend.siteDelta, cap.delta)) {
    return `with this charge, site "${c.siteName}" has spent delta ${spend.siteDelta} over all its studies, over the cap ${cap.delta} it enrolled with`;
  }
  spend.commit();
  ctx.chargedTasks.set(taskKey, entry.seq);
  return null;
}

/** recorded < recomputed beyond the relative tolerance. */
function isBelow(recorded: number, recomputed: number): boolean {
  return recorded < recomputed * (1 - EPSILON_TOLERANCE);
}

function isOver(spent: number, limit: number): boolean {
  return spent > limit * (1 + EPSILON_TOLERANCE);
}
