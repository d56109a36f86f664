/** The operator API's edge: a budget split as the wire carries it, read into the coordinator's terms. */
import { describe, expect, it } from "vitest";
import { BudgetSplit } from "../../gen/fedsynth/v1/operator_pb.js";
import { budgetSplitOf } from "./operator-service.js";
import { validateStudyInput } from "../study/study-request.js";

describe("budgetSplitOf", () => {
  it("reads the known values, leaves an unspecified one to the engine, and hands an unknown one to validation to name", () => {
    expect(budgetSplitOf(BudgetSplit.UNSPECIFIED)).toBeUndefined();
    expect(budgetSplitOf(BudgetSplit.EQUAL)).toBe("equal");
    expect(budgetSplitOf(BudgetSplit.ANNEALED)).toBe("annealed");
    const input = { name: "s", schemaJson: "{}", engine: "", epsilon: 1, delta: 1e-5, rounds: 0, sites: ["a"], minSites: 0, roundDeadlineSeconds: 0 };
    expect(() => validateStudyInput({ ...input, budgetSplit: budgetSplitOf(7 as BudgetSplit) })).toThrow(/the budget split must be equal or annealed, got "BudgetSplit 7"/);
    expect(() => validateStudyInput({ ...input, budgetSplit: budgetSplitOf(BudgetSplit.ANNEALED) })).not.toThrow();
  });
});
