/** `fedsynth simulate` as a command: flag errors say what to fix, and Ctrl-C stops everything it started. */
import { describe, expect, it } from "vitest";
import { spawn, execFileSync } from "node:child_process";
import { join } from "node:path";
import { CLI, EXAMPLES, ROOT, heartSiteArgs, runCli, tempDir } from "./support/cli.js";

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
