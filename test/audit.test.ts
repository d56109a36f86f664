/**
 * The auditor's path as a user runs it: a full simulate run, `audit export` of the coordinator's and each
 * site's data directory, `audit verify` of the files alone — and every kind of tampering caught; `model verify`
 * of the run's model file against the ledger's release.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll } from "vitest";
import { decodeModelBundle, encodeModelBundle } from "../shared/engines/model-file.js";
import { EXAMPLES, HEART_SITES, heartSiteArgs, runCli, startSecureCoordinator, tempDir, type CliProcess } from "./support/cli.js";

describe("audit export and verify after a simulate run", () => {
  const dir = tempDir();
  const work = join(dir, "work");
  const ledger = join(dir, "ledger.jsonl");
  const copy = (site: string) => join(dir, `${site}.jsonl`);
  let lines: string[] = [];

  beforeAll(async () => {
    const sim = await runCli(["simulate", "--schema", join(EXAMPLES, "schema.json"), ...heartSiteArgs(), "--rounds", "2", "--out", join(dir, "out.csv"), "--workdir", work, "--quiet"]);
    expect(sim.code, sim.stderr).toBe(0);
    const exported = await runCli(["audit", "export", "--data-dir", join(work, "coordinator"), "--out", ledger]);
    expect(exported.code, exported.stderr).toBe(0);
    for (const site of HEART_SITES) {
      const r = await runCli(["audit", "export", "--data-dir", join(work, "sites", site), "--out", copy(site)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/wrote the 2 charges this site signed/);
    }
    lines = readFileSync(ledger, "utf8").trim().split("\n");
  }, 180_000);

  it("verifies the coordinator's ledger with the consortium CA, and every site's own copy agrees entry for entry", async () => {
    const r = await runCli(["audit", "verify", ledger, "--ca", join(work, "coordinator", "pki", "ca.pem"), ...HEART_SITES.flatMap((s) => ["--site-copy", `${s}=${copy(s)}`]), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.summary.kinds.charge).toBe(8);
    expect(report.summary.kinds.release).toBe(2);
    expect(report.summary.sites.sort()).toEqual([...HEART_SITES].sort());
    for (const c of report.siteCopies) expect(c, c.siteName).toMatchObject({ ok: true, matched: 2, dropped: [], altered: [], unexpected: [] });
    for (const s of report.summary.spend) expect(s.epsilon).toBeLessThanOrEqual(1 + 1e-9);
    // Each site's own cap (simulate gives every agent the study's epsilon) is on the ledger with its key.
    const caps = lines.map((l) => JSON.parse(l)).filter((e) => e.kind === "enrolment" && e.body.cap);
    expect(new Set(caps.map((e) => e.body.siteName))).toEqual(new Set(HEART_SITES));
    for (const e of caps) expect(e.body.cap).toEqual({ epsilon: 1, delta: 1e-5 });
    const text = await runCli(["audit", "verify", ledger]);
    expect(text.stdout).toMatch(/ok: \d+ entries, head seq/);
  });

  it("model verify ties the run's model file to its release on the ledger, and fails a file the ledger did not release", async () => {
    const model = join(work, "pooled-model.fsm");
    const ca = join(work, "coordinator", "pki", "ca.pem");
    const r = await runCli(["model", "verify", "--model", model, "--ledger", ledger, "--ca", ca, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const release = lines.map((l) => JSON.parse(l)).find((e) => e.kind === "release" && e.body.round === 2);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: true, engine: "marginal", round: 2, releasedSha256: release.body.modelSha256,
      privacy: { epsilon: 1, secureAggregation: { threshold: 3, sites: 4 } },
      samplingData: { stored: true, ok: true },
      ledger: { verified: true, release: { seq: release.seq, contributors: release.body.contributors } },
    });
    // The same file presented as round 1's model: the ledger released other bytes for round 1.
    const bundle = decodeModelBundle(readFileSync(model), model);
    const relabelled = join(dir, "relabelled.fsm");
    writeFileSync(relabelled, encodeModelBundle({ ...bundle, round: 1 }));
    const wrong = await runCli(["model", "verify", "--model", relabelled, "--ledger", ledger]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/: FAILED\n/);
    expect(wrong.stdout).toMatch(/NOT RELEASED: the ledger releases study study-\w+ round 1 as [0-9a-f]{64}, not as these bytes/);
    // A ledger that fails its own verification proves no release.
    const broken = join(dir, "broken-ledger.jsonl");
    writeFileSync(broken, lines.filter((_, i) => i !== firstCharge()).join("\n") + "\n");
    const unproven = await runCli(["model", "verify", "--model", model, "--ledger", broken]);
    expect(unproven.code).toBe(1);
    expect(unproven.stdout).toMatch(/FAILED verification \(entry \d+.*\); its releases prove nothing/);
    // A file that is not there (exit 1), or not a model (a bad argument: exit 2), is refused by name, as `fedsynth
    // sample` refuses it (the same reader).
    const missing = await runCli(["model", "verify", "--model", join(dir, "no-such.fsm")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no model file at .*no-such\.fsm\n.*fedsynth model export/);
    const notModel = await runCli(["model", "verify", "--model", ledger]);
    expect(notModel.code).toBe(2);
    expect(notModel.stderr).toMatch(/ledger\.jsonl is not a usable fedsynth model: it does not start with the fedsynth model header/);
  });

  const tampered = async (edit: (lines: string[]) => string[]) => {
    const file = join(dir, `tampered-${Math.random().toString(36).slice(2)}.jsonl`);
    writeFileSync(file, edit([...lines]).join("\n") + "\n");
    return runCli(["audit", "verify", file]);
  };
  const firstCharge = () => lines.findIndex((l) => l.includes('"kind":"charge"'));

  it("fails, naming the entry, when a recorded epsilon is lowered", async () => {
    const i = firstCharge();
    const r = await tampered((ls) => {
      const entry = JSON.parse(ls[i]);
      entry.body.charge.epsilonTask /= 2;
      ls[i] = JSON.stringify(entry);
      return ls;
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`FAILED at entry ${i}\\b`));
  });

  it("fails when an entry is dropped, duplicated or two are swapped", async () => {
    const i = firstCharge();
    for (const edit of [
      (ls: string[]) => ls.filter((_, k) => k !== i),
      (ls: string[]) => [...ls.slice(0, i + 1), ls[i], ...ls.slice(i + 1)],
      (ls: string[]) => [...ls.slice(0, i), ls[i + 1], ls[i], ...ls.slice(i + 2)],
    ]) {
      const r = await tampered(edit);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/FAILED at entry \d+/);
    }
  });

  it("fails when any byte of a line changes, even one that keeps the value", async () => {
    const i = firstCharge();
    const r = await tampered((ls) => {
      ls[i] = ls[i].replace('"delta":0.00001', '"delta":1e-5');
      return ls;
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`FAILED at entry ${i}: .*canonical`));
  });

  it("shows a site's charge the ledger does not hold", async () => {
    const site = HEART_SITES[0];
    const extra = JSON.parse(readFileSync(copy(site), "utf8").trim().split("\n")[0]);
    extra.charge.taskId = "task-the-coordinator-never-recorded";
    const file = join(dir, "copy-with-extra.jsonl");
    writeFileSync(file, readFileSync(copy(site), "utf8") + JSON.stringify(extra) + "\n");
    const r = await runCli(["audit", "verify", ledger, "--site-copy", `${site}=${file}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`site copy of ${site}: MISMATCH — dropped \\[\\{"studyId":"study-[0-9a-f]+","taskId":"task-the-coordinator-never-recorded"`));
  });

  describe("the auditor role", () => {
    let coordinator: CliProcess | undefined;
    afterAll(async () => {
      await coordinator?.stop();
    });

    it("reads studies and the ledger over the operator API, changes nothing, and gets a report that opens without a server", async () => {
      const dataDir = join(work, "coordinator");
      const started = await startSecureCoordinator(dataDir);
      coordinator = started.proc;
      const auditor = join(dir, "auditor");
      const issued = await runCli(["operator", "issue", "--data-dir", dataDir, "--name", "dpo@cleveland.example", "--role", "auditor", "--out", auditor]);
      expect(issued.code, issued.stderr).toBe(0);
      const as = ["--coordinator", started.address, "--credentials", auditor];

      const listed = await runCli(["study", "list", ...as, "--json"]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toHaveLength(1);
      const studyId = JSON.parse(listed.stdout)[0].studyId;
      const remote = join(dir, "remote-ledger.jsonl");
      const exported = await runCli(["audit", "export", ...as, "--out", remote]);
      expect(exported.code, exported.stderr).toBe(0);
      expect((await runCli(["audit", "verify", remote, "--ca", join(dataDir, "pki", "ca.pem")])).code).toBe(0);
      // The remote export is the stored ledger (and whatever heads were signed since), entry for entry.
      expect(readFileSync(remote, "utf8").startsWith(readFileSync(ledger, "utf8").split("\n").slice(0, -2).join("\n"))).toBe(true);

      const readOnly = /auditor dpo@cleveland\.example has read-only access/;
      for (const args of [
        ["study", "create", ...as, "--name", "x", "--schema", join(EXAMPLES, "schema.json"), "--site", "cleveland"],
        ["study", "cancel", studyId, ...as],
        ["site", "token", ...as, "--site", "basel"],
        ["site", "revoke", "va", ...as],
      ]) {
        const r = await runCli(args);
        expect(r.code, args.join(" ")).not.toBe(0);
        expect(r.stderr, args.join(" ")).toMatch(readOnly);
      }

      const html = join(dir, "report.html");
      const report = await runCli(["audit", "report", remote, "--out", html]);
      expect(report.code, report.stderr).toBe(0);
      const page = readFileSync(html, "utf8");
      expect(page).toMatch(/Verified/);
      for (const site of HEART_SITES) expect(page).toContain(site);
      expect(page).not.toMatch(/<script|https?:\/\//);
    }, 120_000);
  });
});
