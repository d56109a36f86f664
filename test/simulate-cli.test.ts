/** `fedsynth simulate` as a command: flag errors say what to fix, and Ctrl-C stops everything it started. */
import { describe, expect, it } from "vitest";
import { spawn, execFileSync } from "node:child_process";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { CLI, EXAMPLES, HEART_SITES, ROOT, heartSiteArgs, runCli, tempDir } from "./support/cli.js";

const schema = join(EXAMPLES, "schema.json");

describe("simulate flags", () => {
  const cases: [string, string[], RegExp][] = [
    ["a site without a file", ["--site", "cleveland"], /--site "cleveland" is not NAME=FILE\.csv/],
    ["a site file that does not exist", ["--site", "a=/nonexistent/site.csv"], /\/nonexistent\/site\.csv: file not found/],
    ["the same site twice", ["--site", `a=${join(EXAMPLES, "va.csv")}`, "--site", `a=${join(EXAMPLES, "va.csv")}`], /site a is given twice/],
    ["a negative epsilon", [...heartSiteArgs(), "--epsilon", "-1"], /--epsilon must be a positive number, got "-1"/],
    ["a delta of 1", [...heartSiteArgs(), "--delta", "1"], /--delta must be a number between 0 and 1/],
    ["zero rounds", [...heartSiteArgs(), "--rounds", "0"], /--rounds must be a whole number of at least 1/],
    ["an unknown engine", [...heartSiteArgs(), "--engine", "gan"], /Unknown engine "gan"[\s\S]*independent, marginal, neural/],
    ["an unknown secure-aggregation mode", [...heartSiteArgs(), "--secure-aggregation", "maybe"], /--secure-aggregation must be auto, on or off, not "maybe"/],
    ["an unsafe secure-aggregation threshold", [...heartSiteArgs(), "--secure-threshold", "2"], /threshold of 2 for 4 sites is unsafe[\s\S]*more than half the sites[\s\S]*use the default ⌈2n\/3⌉ = 3 for 4 sites/],
    ["an unknown budget split", [...heartSiteArgs(), "--budget-split", "fast"], /--budget-split <split>' argument 'fast' is invalid\. Allowed choices are equal, annealed/],
    ["an annealed budget for an engine that splits it equally", [...heartSiteArgs(), "--engine", "neural", "--budget-split", "annealed"], /the neural engine splits its budget equally over the rounds and cannot anneal it[\s\S]*use --engine marginal/],
    ["a threshold without secure aggregation", [...heartSiteArgs(), "--secure-aggregation", "off", "--secure-threshold", "3"], /a secure-aggregation threshold was given for a study without secure aggregation/],
  ];
  for (const [what, args, message] of cases) {
    it(`refuses ${what}`, async () => {
      const r = await runCli(["simulate", "--schema", schema, ...args, "--out", join(tempDir(), "out.csv")]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
    });
  }
});

describe("simulate --budget-split annealed", () => {
  it("runs the marginal engine's selected rounds on the coordinator's annealed shares, the last spending exactly what is left", async () => {
    const dir = tempDir();
    const work = join(dir, "work");
    const r = await runCli(["simulate", "--schema", schema, ...heartSiteArgs(), "--rounds", "4", "--budget-split", "annealed", "--out", join(dir, "out.csv"), "--summary", join(dir, "summary.json"), "--workdir", work, "--quiet"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/engine marginal, 4 round\(s\), .*budget annealed over the rounds/);
    const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
    expect(summary.budgetSplit).toBe("annealed");
    const ledger = join(dir, "ledger.jsonl");
    expect((await runCli(["audit", "export", "--data-dir", join(work, "coordinator"), "--out", ledger])).code).toBe(0);
    const verified = await runCli(["audit", "verify", ledger, "--json"]);
    expect(verified.code, verified.stdout).toBe(0);
    const charges = readFileSync(ledger, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.kind === "charge").map((e) => e.body.charge);
    for (const site of HEART_SITES) {
      const mine = charges.filter((c) => c.siteName === site).sort((a, b) => a.round - b.round);
      expect(mine.map((c) => c.round)).toEqual([1, 2, 3, 4]);
      // Rounds 3 and 4 are the selected ones: the first takes half an equal split, the last all that is left.
      expect(mine[3].epsilonTask).toBeGreaterThan(1.5 * mine[2].epsilonTask);
      expect(mine[3].epsilonStudyTotal).toBeLessThanOrEqual(1);
      expect(mine[3].epsilonStudyTotal).toBeGreaterThan(1 - 1e-6);
      expect(summary.sites[site].epsilon).toBe(mine[3].epsilonStudyTotal);
    }
  }, 120_000);
});

describe("simulate and Ctrl-C", () => {
  it("stops the coordinator and every site agent it started", async () => {
    const workdir = join(tempDir(), "work");
    // Slow agents (fault injection) keep the study running long enough to interrupt it.
    const child = spawn(process.execPath, [CLI, "simulate", "--schema", schema, ...heartSiteArgs(), "--rounds", "5", "--out", join(workdir, "..", "out.csv"), "--workdir", workdir], {
      cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FEDSYNTH_FAULT_TASK_DELAY_MS: "20000" },
    });
    let stderr = "";
    child.stderr.on("data", (c) => (stderr += c));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const deadline = Date.now() + 60_000;
    while (!/started 4 site agents/.test(stderr)) {
      if (Date.now() > deadline) throw new Error(`simulate did not start its agents:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1500));
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/interrupted: stopped the coordinator and every site agent/);
    await new Promise((r) => setTimeout(r, 500));
    const left = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(workdir));
    expect(left).toEqual([]);
  }, 90_000);
});
