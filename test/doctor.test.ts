/** `fedsynth doctor` as a user runs it: the built CLI in its own process. */
import { describe, expect, it } from "vitest";
import { runCli } from "./support/cli.js";

describe("fedsynth doctor", () => {
  it("--json reports the machine, a working TensorFlow.js backend and a matMul profile", async () => {
    const r = await runCli(["doctor", "--json"], { timeoutMs: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.node).toBe(process.version);
    expect(report.cpus).toBeGreaterThanOrEqual(1);
    expect(report.tensorflow.ok).toBe(true);
    expect(["node", "wasm", "cpu"]).toContain(report.tensorflow.backend);
    expect(report.tensorflow.threads).toBeGreaterThanOrEqual(1);
    expect(report.matmul.backend).toBe(report.tensorflow.tfBackend);
    expect(report.matmul.timings.map((t: { variant: string }) => t.variant)).toEqual(["plain", "transposeA", "transposeB"]);
    for (const t of report.matmul.timings) expect(t.gflops).toBeGreaterThan(0);
  });

  it("prints a readable report", async () => {
    const r = await runCli(["doctor"], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^fedsynth \d+\.\d+\.\d+/);
    expect(r.stdout).toMatch(/tensorflow {2}backend (node|wasm|cpu)/);
    expect(r.stdout).toMatch(/plain .* GFLOP\/s/);
  });
});
