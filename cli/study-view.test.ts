/** How a study reads in a terminal: what an operator needs to know of its engine, budget and updates. */
import { describe, expect, it } from "vitest";
import { formatStudy } from "./study-view.js";
import type { StudyView } from "./operator-client.js";

const study: StudyView = {
  studyId: "study-1", name: "heart", engine: "marginal", engineReason: "named by the operator", epsilon: 1, delta: 1e-5, rounds: 4,
  completedRounds: 1, state: "running", statusMessage: "round 2 collecting", minSites: 3, secureThreshold: 3, budgetSplit: "equal",
  participants: [{ siteName: "cleveland", state: "active", epsilonCharged: 0.4321234567, deltaCharged: 1e-5, message: "" }],
  roundDetails: [{ round: 1, state: "aggregated", submitted: ["cleveland"], pending: [] }],
};

describe("formatStudy", () => {
  it("says when the study's budget is annealed, and not otherwise", () => {
    expect(formatStudy(study)).not.toMatch(/annealed/);
    expect(formatStudy({ ...study, budgetSplit: "annealed" })).toMatch(/budget annealed: the coordinator sets each selected round's share of it as the rounds go, the last taking exactly what is left/);
  });

  it("shows why the coordinator chose the engine, the updates' protection and each site's charge", () => {
    const text = formatStudy({ ...study, engineReason: "a small-to-mid-sized study" });
    expect(text).toMatch(/chosen for this study: a small-to-mid-sized study \(name another with --engine\)/);
    expect(text).toMatch(/secure aggregation: the coordinator sees only sums of at least 3 of 1 sites/);
    expect(text).toMatch(/cleveland\s+active\s+charged epsilon=0\.432123/);
    expect(formatStudy(study)).not.toMatch(/chosen for this study/);
  });
});
