/**
 * Updates and models larger than gRPC's 4 MiB default message limit travel in chunks: a study whose
 * site updates are 8 MB each runs end to end.
 */
import { describe, expect, it } from "vitest";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir } from "./support/cli.js";

describe("chunked transfer", () => {
  it("runs a study whose updates and pooled model are twice the gRPC message limit", async () => {
    const dir = tempDir();
    const columns = Array.from({ length: 100 }, (_, j) => ({ name: `x${j}`, type: "numeric", min: 0, max: 1, bins: 10_000 }));
    writeFileSync(join(dir, "schema.json"), JSON.stringify({ columns }));
    for (const site of ["a", "b"]) {
      const rows = Array.from({ length: 40 }, (_, i) => columns.map((_, j) => ((i * 7 + j * 13) % 100) / 100).join(","));
      writeFileSync(join(dir, `${site}.csv`), [columns.map((c) => c.name).join(","), ...rows].join("\n") + "\n");
    }
    const out = join(dir, "out.csv");
    const workdir = join(dir, "work");
    const r = await runCli([
      "simulate", "--schema", join(dir, "schema.json"), "--site", `a=${join(dir, "a.csv")}`, "--site", `b=${join(dir, "b.csv")}`,
      // The independent engine: its update holds every bin of every column, which is what this test needs.
      "--engine", "independent", "--epsilon", "5", "--rows", "50", "--out", out, "--workdir", workdir,
    ], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    // 100 columns × (10,000 bins + missing) float64 values: over 8 MB per site update.
    expect(statSync(join(workdir, "pooled-model.fsm")).size).toBeGreaterThan(8_000_000);
    expect(readFileSync(out, "utf8").trim().split("\n")).toHaveLength(51);
  }, 200_000);
});
