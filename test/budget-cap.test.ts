/** The site is in control: an agent refuses a study that would exceed its own cap, and both sides say why. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLES, HEART_SITES, heartSiteArgs, runCli, tempDir } from "./support/cli.js";
import { LocalStore } from "../site-agent/local-store.js";

describe("site budget cap", () => {
  it("refuses a study whose epsilon exceeds the agent's cap, with a clear message on both sides", async () => {
    const dir = tempDir();
    const workdir = join(dir, "work");
    const r = await runCli([
      "simulate", "--schema", join(EXAMPLES, "schema.json"), ...heartSiteArgs(), "--epsilon", "2",
      "--site-epsilon-cap", "va=1.5", "--out", join(dir, "out.csv"), "--workdir", workdir,
    ]);
    expect(r.code).not.toBe(0);
    // The operator's side: the study failed, naming the site and its reason.
    expect(r.stderr).toMatch(/the study failed/);
    expect(r.stderr).toMatch(/va declined/);
    expect(r.stderr).toMatch(/asks for epsilon 2 per site, but this site's budget cap is epsilon 1\.5/);
    // The site's side: its own log says the same.
    const siteLog = readFileSync(join(workdir, "logs", "va.log"), "utf8");
    expect(siteLog).toMatch(/declining study 'simulate'/);
    expect(siteLog).toMatch(/budget cap is epsilon 1\.5/);
    // The refusal came at the invitation, before any round: nobody computed or spent anything.
    for (const site of HEART_SITES) {
      const store = new LocalStore(join(workdir, "sites", site));
      expect(store.charges(), site).toEqual([]);
      store.close();
    }
    const coordinatorLog = readFileSync(join(workdir, "logs", "coordinator.log"), "utf8");
    expect(coordinatorLog).toMatch(/site declined the study.*site=va.*reason=budget-cap/);
  }, 120_000);
});
