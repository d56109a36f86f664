/**
 * Secure aggregation across real processes: six hospital agents, a coordinator that sees only masked
 * inputs, two sites that die right after theirs left (fault injection), a restart before any masked input
 * (the session resumes from the store; test/restart-secure.test.ts restarts it after masked inputs).
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { EXAMPLES, runCli, startAgent, startCoordinator, studyStatus, tempDir, until, type CliProcess } from "./support/cli.js";
import { LocalStore } from "../site-agent/local-store.js";

/** Six sites from the four heart files: Cleveland and Hungary split in halves. */
function sixSites(dir: string): { name: string; file: string }[] {
  mkdirSync(dir, { recursive: true });
  const out: { name: string; file: string }[] = [];
  for (const source of ["cleveland", "hungary", "switzerland", "va"]) {
    const [header, ...rows] = readFileSync(join(EXAMPLES, `${source}.csv`), "utf8").trim().split("\n");
    const parts = source === "cleveland" || source === "hungary" ? [rows.filter((_, i) => i % 2 === 0), rows.filter((_, i) => i % 2 === 1)] : [rows];
    parts.forEach((part, i) => {
      const name = parts.length > 1 ? `${source}-${i + 1}` : source;
      const file = join(dir, `${name}.csv`);
      writeFileSync(file, [header, ...part].join("\n") + "\n");
      out.push({ name, file });
    });
  }
  return out;
}

async function createAndStart(address: string, sites: string[], extra: string[] = []): Promise<string> {
  const created = await runCli([
    "study", "create", "--coordinator", address, "--insecure", "--name", "secure", "--schema", join(EXAMPLES, "schema.json"),
    ...sites.flatMap((s) => ["--site", s]), "--epsilon", "1", "--rounds", "1", "--secure-aggregation", "on", "--json", ...extra,
  ]);
  expect(created.code, created.stderr).toBe(0);
  const study = JSON.parse(created.stdout);
  const studyId = study.studyId as string;
  expect((await runCli(["study", "start", studyId, "--coordinator", address, "--insecure"])).code).toBe(0);
  return studyId;
}

const finished = (address: string, studyId: string) =>
  until(async () => {
    const s = await studyStatus(address, studyId);
    return s.state === "running" || s.state === "created" ? undefined : s;
  }, "the study to end", 90_000);

describe("secure aggregation across processes", () => {
  const procs: CliProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  });

  it("completes a round when a third of the sites die after sending their masked inputs, and stores no individual update", async () => {
    const dir = tempDir();
    const sites = sixSites(join(dir, "data"));
    const coordinatorDir = join(dir, "coordinator");
    const { proc, address } = await startCoordinator(coordinatorDir);
    procs.push(proc);
    const dying = new Set(["switzerland", "va"]);
    const agents = sites.map((s) => startAgent({
      address, name: s.name, data: s.file, dataDir: join(dir, "sites", s.name), epsilonCap: 1,
      env: dying.has(s.name) ? { FEDSYNTH_FAULT_DIE_AFTER_MASKED_INPUT: "1" } : {},
    }));
    procs.push(...agents);
    await Promise.all(agents.map((a) => a.waitFor(/connected to the coordinator/)));

    const studyId = await createAndStart(address, sites.map((s) => s.name));
    const done = await finished(address, studyId);
    expect(done.state, done.statusMessage).toBe("completed");
    expect(done.secureThreshold).toBe(4); // ⌈2·6/3⌉
    for (const name of dying) expect(agents[sites.findIndex((s) => s.name === name)].running, name).toBe(false);

    const db = new Database(join(coordinatorDir, "coordinator.sqlite"), { readonly: true, fileMustExist: true });
    try {
      // The masked inputs were summed as they came and never stored: no update, masked or not, is in the store.
      const stored = db.prepare("SELECT site_name, update_blob FROM submissions WHERE study_id = ?").all(studyId) as { site_name: string; update_blob: Buffer | null }[];
      expect(stored.map((s) => s.site_name).sort()).toEqual(sites.map((s) => s.name).sort());
      expect(stored.every((s) => s.update_blob === null)).toBe(true);
      const release = db.prepare("SELECT body_json FROM ledger WHERE study_id = ? AND kind = 'release'").get(studyId) as { body_json: string };
      const body = JSON.parse(release.body_json);
      expect(body.contributors.sort()).toEqual(sites.map((s) => s.name).sort());
      expect(body.silentInUnmasking.sort()).toEqual([...dying].sort());
      expect(body.secureAggregationThreshold).toBe(4);
    } finally {
      db.close();
    }

    // Every site charged itself the released sum's guarantee, exactly as the coordinator did.
    for (const s of sites) {
      const store = new LocalStore(join(dir, "sites", s.name));
      const charges = store.charges({ studyId });
      store.close();
      expect(charges, s.name).toHaveLength(1);
      expect(charges[0].mechanisms[0]).toMatchObject({ kind: "distributed-discrete-gaussian", sites: 4, repetitions: 1 });
      expect(charges[0].epsilonStudyTotal).toBeLessThanOrEqual(1);
      const coordinatorView = done.participants.find((p: any) => p.siteName === s.name);
      expect(coordinatorView.epsilonCharged).toBeCloseTo(charges[0].epsilonStudyTotal, 12);
    }

    // The pooled model samples like any other.
    const model = join(dir, "pooled.fsm");
    expect((await runCli(["model", "export", "--coordinator", address, "--insecure", "--study", studyId, "--out", model])).code).toBe(0);
    const sampled = await runCli(["sample", "--model", model, "--rows", "200", "--out", join(dir, "synthetic.csv"), "--seed", "1"]);
    expect(sampled.code, sampled.stderr).toBe(0);
    expect(readFileSync(join(dir, "synthetic.csv"), "utf8").trim().split("\n")).toHaveLength(201);
  }, 180_000);

  it("resumes the stored session after a coordinator restart that came before any masked input", async () => {
    const dir = tempDir();
    const coordinatorDir = join(dir, "coordinator");
    const first = await startCoordinator(coordinatorDir);
    procs.push(first.proc);
    const address = first.address;
    const names = ["cleveland", "hungary", "switzerland"];
    // Switzerland holds its task for 12 s, so the session cannot pass its first phase before the crash, even
    // when a loaded machine takes seconds per status call.
    const agents = names.map((name) => startAgent({
      address, name, data: join(EXAMPLES, `${name}.csv`), dataDir: join(dir, "sites", name), epsilonCap: 1,
      env: name === "switzerland" ? { FEDSYNTH_FAULT_TASK_DELAY_MS: "12000" } : {},
    }));
    procs.push(...agents);
    await Promise.all(agents.map((a) => a.waitFor(/connected to the coordinator/)));
    const studyId = await createAndStart(address, names);
    await first.proc.waitFor(/secure aggregation session opened/);
    // Once the round (and its session) is committed, which the status shows: the log line comes just before.
    await until(async () => ((await studyStatus(address, studyId)).roundDetails?.length > 0 ? true : undefined), "round 1 in the store");
    await first.proc.stop("SIGKILL");

    const second = await startCoordinator(coordinatorDir, Number(address.split(":").pop()));
    procs.push(second.proc);
    expect(second.proc.output).toMatch(/resuming round/);
    await second.proc.waitFor(/secure aggregation session resumed from the store/, 60_000);
    const done = await finished(address, studyId);
    expect(done.state, done.statusMessage).toBe("completed");
    // One charge per site: nothing had left any site before the crash.
    for (const name of names) {
      const store = new LocalStore(join(dir, "sites", name));
      expect(store.charges({ studyId }), name).toHaveLength(1);
      store.close();
    }
  }, 180_000);
});
