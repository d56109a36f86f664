/**
 * The README's front door: `fedsynth demo` (what `npm run demo` runs) end to end, twice in the same work
 * directory as a user re-running it would, and its refusal of a run folder that holds someone else's files.
 */
import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir } from "./support/cli.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("fedsynth demo", () => {
  it("runs the four-hospital federation and scores it, and runs again in the same work directory", async () => {
    const dir = tempDir();
    dirs.push(dir);
    for (const attempt of [1, 2]) {
      const r = await runCli(["demo", "--workdir", dir], { timeoutMs: 240_000 });
      expect(r.code, `run ${attempt}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain("fedsynth fidelity report");
      expect(r.stdout).toMatch(/engine \w+, \d+ round\(s\)/);
      if (attempt === 2) expect(r.stdout).toContain(`replacing the previous demo run in ${join(dir, "run")}`);
      const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8"));
      // A sanity floor far below what ε = 1 gives here (about 0.89), so DP noise cannot fail it.
      expect(report.overall).toBeGreaterThan(0.7);
      const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
      for (const site of Object.values<{ epsilon: number }>(summary.sites)) expect(site.epsilon).toBeLessThanOrEqual(1);
    }
  }, 600_000);

  it("refuses a run folder holding files it did not write, naming them, and deletes nothing", async () => {
    const dir = tempDir();
    dirs.push(dir);
    mkdirSync(join(dir, "run"), { recursive: true });
    writeFileSync(join(dir, "run", "notes.txt"), "keep me\n");
    const r = await runCli(["demo", "--workdir", dir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/run holds files a demo did not write \(notes\.txt\)/);
    expect(r.stderr).toMatch(/fresh --workdir/);
    expect(existsSync(join(dir, "run", "notes.txt"))).toBe(true);
  });
});
