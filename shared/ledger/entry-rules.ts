/**
 * The checks of the entries other than charges (charge-audit.ts) and heads (a signature): each against
 * what earlier entries of the ledger established. Every function returns why the entry fails, or null.
 */
import { LEDGER_FORMAT, type EnrolmentBody, type GenesisBody, type RefusalBody, type ReleaseBody, type StudyCreatedBody } from "./entry.js";
import { enrolmentCertificateProblem } from "./enrolment-certificate.js";
import { decodePublicKey } from "./signatures.js";

/** The studies created so far, by id, with the seq of their creation. */
export type Studies = Map<string, { body: StudyCreatedBody; seq: number }>;

export function genesisProblem(body: GenesisBody): string | null {
  if (body.format !== LEDGER_FORMAT) return `the ledger's format is ${JSON.stringify(body.format)}; this version reads ${LEDGER_FORMAT} only`;
  return decodePublicKey(body.coordinatorPublicKey) ? null : "the coordinator public key is not a 32-byte Ed25519 key in base64";
}

/** A site may enrol again (a new key, after a certificate renewal): its later charges use the new key. */
export function enrolmentProblem(body: EnrolmentBody, at: number, caPem: string | undefined): string | null {
  if (!decodePublicKey(body.publicKey)) return `the public key of site "${body.siteName}" is not a 32-byte Ed25519 key in base64`;
  return caPem ? enrolmentCertificateProblem(body, at, caPem) : null;
}

export function studyProblem(body: StudyCreatedBody, studies: Studies): string | null {
  const earlier = studies.get(body.studyId);
  if (earlier) return `study "${body.studyId}" was already created at seq ${earlier.seq}`;
  const stranger = Object.keys(body.siteCaps ?? {}).find((s) => !body.sites.includes(s));
  return stranger ? `the study sets a cap for site "${stranger}", which it does not invite` : null;
}

/** `accepted` holds `${studyId}\n${round}\n${siteName}` of every accepted charge so far. */
export function releaseProblem(body: ReleaseBody, studies: Studies, accepted: ReadonlySet<string>): string | null {
  const { studyId, round, contributors } = body;
  const study = studies.get(studyId);
  if (!study) return `release of study "${studyId}", which has no earlier study-created entry`;
  if (round > study.body.rounds) return `release for round ${round} of study "${studyId}", which has ${study.body.rounds} rounds`;
  if (contributors.length === 0) return "a release with no contributors";
  const twice = contributors.find((s, i) => contributors.indexOf(s) !== i);
  if (twice) return `contributor "${twice}" is listed twice`;
  const absent = contributors.find((s) => !accepted.has(`${studyId}\n${round}\n${s}`));
  return absent ? `contributor "${absent}" has no accepted charge in round ${round} of study "${studyId}"` : null;
}

/** A refusal spends nothing: it only has to name a study of this ledger (its site may not even be enrolled). */
export function refusalProblem(body: RefusalBody, studies: Studies): string | null {
  const study = studies.get(body.studyId);
  if (!study) return `refusal in study "${body.studyId}", which has no earlier study-created entry`;
  return body.round !== null && body.round > study.body.rounds ? `refusal for round ${body.round} of study "${body.studyId}", which has ${study.body.rounds} rounds` : null;
}
