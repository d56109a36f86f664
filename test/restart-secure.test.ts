/**
 * A coordinator killed (SIGKILL) in the middle of a secure-aggregation round, after masked inputs were
 * summed: the restarted coordinator rebuilds the session from its SQLite store (the accepted messages,
 * the running masked sum and the sites in it), the agents reconnect and answer what the open phase asks,
 * the site whose masked input left while the coordinator was down sends it again, and the round
 * completes with every site charged exactly once a round, on the ledger and in each site's own copy.
 */
import { afterAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { EXAMPLES, runCli, startAgent, startCoordinator, studyStatus, tempDir, until, type CliProcess, type CliResult } from "./support/cli.js";
import { LocalStore } from "../site-agent/local-store.js";

function ok(r: CliResult, what: string): CliResult {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe("coordinator crash during secure aggregation", () => {
  const dir = tempDir("fedsynth-restart-secure-");
  const procs: CliProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  });

  it("resumes the session from the store after masked inputs were summed, and charges each site once", async () => {
    const coordinatorDir = join(dir, "coordinator");
    const first = await startCoordinator(coordinatorDir);
    procs.push(first.proc);
    const address = first.address;
    const port = Number(address.split(":").pop());
    const sites = ["cleveland", "hungary", "switzerland"];
    // Hungary's first masked input (charged at the site already) waits 15 s before it leaves: the coordinator is
    // killed with the others' inputs in its running sum and hungary's still to come.
    const agents = sites.map((name) => startAgent({
      address, name, data: join(EXAMPLES, `${name}.csv`), dataDir: join(dir, "sites", name), epsilonCap: 1,
      env: name === "hungary" ? { FEDSYNTH_FAULT_MASKED_INPUT_DELAY_MS: "15000" } : {},
    }));
    procs.push(...agents);
    await Promise.all(agents.map((a) => a.waitFor(/connected to the coordinator/)));

    const created = await runCli(["study", "create", "--coordinator", address, "--insecure", "--name", "secure-restart", "--schema", join(EXAMPLES, "schema.json"),
      ...sites.flatMap((s) => ["--site", s]), "--epsilon", "1", "--rounds", "2", "--secure-aggregation", "on", "--json"]);
    expect(created.code, created.stderr).toBe(0);
    const studyId = JSON.parse(created.stdout).studyId as string;
    ok(await runCli(["study", "start", studyId, "--coordinator", address, "--insecure"]), "study start");

    const inSum = await until(async () => {
      const submitted: string[] = (await studyStatus(address, studyId)).roundDetails[0]?.submitted ?? [];
      if (submitted.includes("hungary")) throw new Error("hungary's masked input arrived before the coordinator was killed: the test missed its window");
      return submitted.length > 0 ? submitted : undefined;
    }, "a masked input in the running sum before hungary's", 120_000);
    await first.proc.stop("SIGKILL");
    // What the killed coordinator left: the session at MaskedInput, the sum of exactly the charged sites.
    const db = new Database(join(coordinatorDir, "coordinator.sqlite"), { readonly: true, fileMustExist: true });
    const left = db.prepare("SELECT phase, summed_sites_json, length(running_sum) AS bytes FROM secagg_sessions WHERE study_id = ? AND round = 1").get(studyId) as any;
    const charged = (db.prepare("SELECT site_name FROM ledger WHERE study_id = ? AND kind = 'charge' AND round = 1 ORDER BY site_name").all(studyId) as any[]).map((r) => r.site_name);
    db.close();
    expect(left.phase).toBe("MaskedInput");
    expect(JSON.parse(left.summed_sites_json)).toEqual(charged);
    for (const site of inSum) expect(charged).toContain(site);
    expect(charged).not.toContain("hungary");
    expect(left.bytes).toBeGreaterThan(0);

    const second = await startCoordinator(coordinatorDir, port);
    procs.push(second.proc);
    expect(second.proc.output).toMatch(/resuming round/);
    await second.proc.waitFor(/secure aggregation session resumed from the store/, 60_000);
    expect(second.proc.output).not.toMatch(/restarted during secure aggregation/);

    const done = await until(async () => {
      const s = await studyStatus(address, studyId);
      return s.state === "running" || s.state === "created" ? undefined : s;
    }, "the study to end", 150_000);
    expect(done.state, done.statusMessage).toBe("completed");
    expect(done.completedRounds).toBe(2);
    for (const r of done.roundDetails) expect([...r.submitted].sort()).toEqual(sites);
    const hungary = agents[sites.indexOf("hungary")];
    // Hungary's masked input left while the coordinator was down; it went again, unchanged, to the new one.
    expect(hungary.output).toMatch(/sending the last message again, unchanged/);
    // It went more than once (on the task announced again, and on the relay asked again): taken once.
    expect(second.proc.output).toMatch(/masked input received again; it is in the running sum already \(no new charge\) site=hungary/);
    expect(second.proc.output).not.toMatch(/secure-aggregation message refused/);

    for (const ag of agents) await ag.stop();
    await second.proc.stop();
    // Nothing of the session is left once its rounds ended, and no individual update was ever stored.
    const after = new Database(join(coordinatorDir, "coordinator.sqlite"), { readonly: true, fileMustExist: true });
    try {
      expect((after.prepare("SELECT COUNT(*) AS n FROM secagg_sessions").get() as any).n).toBe(0);
      expect((after.prepare("SELECT COUNT(*) AS n FROM secagg_messages").get() as any).n).toBe(0);
      const stored = after.prepare("SELECT update_blob FROM submissions WHERE study_id = ?").all(studyId) as { update_blob: Buffer | null }[];
      expect(stored).toHaveLength(2 * sites.length);
      expect(stored.every((s) => s.update_blob === null)).toBe(true);
    } finally {
      after.close();
    }

    // The ledger verifies, with every site's own copy; one accepted charge per site per round.
    const ledgerFile = join(dir, "ledger.jsonl");
    ok(await runCli(["audit", "export", "--data-dir", coordinatorDir, "--out", ledgerFile]), "audit export");
    const copies: string[] = [];
    for (const site of sites) {
      const file = join(dir, `${site}.jsonl`);
      ok(await runCli(["audit", "export", "--data-dir", join(dir, "sites", site), "--out", file]), `audit export ${site}`);
      copies.push("--site-copy", `${site}=${file}`);
    }
    ok(await runCli(["audit", "verify", ledgerFile, ...copies]), "audit verify");
    const charges = readFileSync(ledgerFile, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.kind === "charge");
    for (const site of sites) {
      const mine = charges.filter((c) => c.body.charge.siteName === site);
      expect(mine.map((c) => [c.body.charge.round, c.body.accepted]), site).toEqual([[1, true], [2, true]]);
      const store = new LocalStore(join(dir, "sites", site));
      const own = store.charges({ studyId });
      store.close();
      expect(own.map((c) => c.round), site).toEqual([1, 2]);
      const view = done.participants.find((p: any) => p.siteName === site);
      expect(view.epsilonCharged).toBeCloseTo(own[1].epsilonStudyTotal, 12);
      expect(own[1].epsilonStudyTotal).toBeLessThanOrEqual(1);
    }
  }, 240_000);
});
