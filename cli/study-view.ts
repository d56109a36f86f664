/** How a study reads in a terminal, and following one until it ends. */
import type { OperatorClient, StudyView } from "./operator-client.js";

export const TERMINAL_STATES = new Set(["completed", "failed", "cancelled"]);

export function formatStudy(s: StudyView): string {
  const lines = [
    `study ${s.studyId} (${s.name})`,
    `  state     ${s.state}: ${s.statusMessage}`,
    `  engine    ${s.engine}, ${s.completedRounds}/${s.rounds} rounds, each site's budget epsilon=${s.epsilon} delta=${s.delta}`,
    ...(s.engineReason && s.engineReason !== "named by the operator" ? [`            chosen for this study: ${s.engineReason} (name another with --engine)`] : []),
    ...(s.budgetSplit === "annealed" ? ["            budget annealed: the coordinator sets each selected round's share of it as the rounds go, the last taking exactly what is left"] : []),
    `  updates   ${s.secureThreshold > 0
      ? `secure aggregation: the coordinator sees only sums of at least ${s.secureThreshold} of ${s.participants.length} sites, each site adding its share of the noise`
      : "each site's update goes up with its own noise (no secure aggregation)"}`,
    `  sites     (at least ${s.minSites} per round)`,
  ];
  for (const p of s.participants) {
    lines.push(`    ${p.siteName.padEnd(16)} ${p.state.padEnd(9)} charged epsilon=${fmt(p.epsilonCharged)}${p.message ? `  ${p.message}` : ""}`);
  }
  for (const r of s.roundDetails) {
    lines.push(`  round ${r.round}: ${r.state}; submitted: ${r.submitted.join(", ") || "none"}${r.pending.length ? `; waiting for: ${r.pending.join(", ")}` : ""}`);
  }
  return lines.join("\n");
}

function fmt(x: number): string {
  return Number(x.toPrecision(6)).toString();
}

/** Polls the study and prints each change of state until it ends. */
export async function watchStudy(client: OperatorClient, studyId: string, out: NodeJS.WritableStream, intervalMs = 500): Promise<StudyView> {
  let last = "";
  for (;;) {
    const s = await client.getStudy(studyId);
    const line = `${new Date().toISOString()} ${s.state} · ${s.completedRounds}/${s.rounds} rounds · ${s.statusMessage}`;
    if (line.slice(25) !== last) {
      out.write(line + "\n");
      last = line.slice(25);
    }
    if (TERMINAL_STATES.has(s.state)) {
      out.write(formatStudy(s) + "\n");
      return s;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
