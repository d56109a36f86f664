/**
 * Two coordinator replicas on one PostgreSQL database, behind one address: the driving replica is killed
 * in the middle of a round, the standby takes the lease, resumes the round from the database, the agents
 * reconnect through the same address, and the study completes with every site's submission of every
 * round counted exactly once (on the ledger, in the study, and in each site's own records). Likewise for a
 * round under secure aggregation killed after masked inputs were summed: the standby rebuilds the session
 * from the database and finishes it.
 */
import { cpSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CliProcess, EXAMPLES, runCli, startSecureAgent, tempDir, until, type CliResult } from "./support/cli.js";
import { postgresUnavailable, startPostgres, type TestPostgres } from "./support/postgres.js";
import { freePort } from "./support/ports.js";
import { startTcpForwarder, type TcpForwarder } from "./support/tcp-forwarder.js";
import { LocalStore } from "../site-agent/local-store.js";

const noPostgres = postgresUnavailable();
if (noPostgres) console.warn(`failover test skipped: ${noPostgres}`);

function ok(r: CliResult, what: string): CliResult {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe.skipIf(!!noPostgres)("coordinator replicas sharing PostgreSQL", () => {
  const dir = tempDir("fedsynth-failover-");
  const procs: CliProcess[] = [];
  let pg: TestPostgres | undefined;
  let forwarder: TcpForwarder | undefined;
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    await forwarder?.close();
    pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the standby finishes the round the killed driver left, with no submission lost or counted twice", async () => {
    pg = await startPostgres();
    const storeUrl = pg.database("consortium");
    const [dirA, dirB] = [join(dir, "replica-a"), join(dir, "replica-b")];
    ok(await runCli(["coordinator", "init", "--data-dir", dirA]), "coordinator init");
    // Every replica serves with the consortium's PKI (in Kubernetes, one Secret mounted in each pod).
    cpSync(join(dirA, "pki"), join(dirB, "pki"), { recursive: true });
    const [portA, portB] = [await freePort(), await freePort()];
    forwarder = await startTcpForwarder([portA, portB]);
    const address = `127.0.0.1:${forwarder.port}`;
    const replica = (name: string, dataDir: string, port: number) => {
      const p = new CliProcess(["coordinator", "start", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`, "--health-listen", "127.0.0.1:0",
        "--store", storeUrl, "--replica", name, "--lease-seconds", "3"]);
      procs.push(p);
      return p;
    };
    const a = replica("a", dirA, portA);
    await a.waitFor(/listening on/);
    const b = replica("b", dirB, portB);
    await b.waitFor(/standby: another replica drives the rounds/);
    expect(b.output).not.toMatch(/listening on/);
    // A standby is alive (a liveness probe keeps it) but not serving (a readiness probe sends it nothing).
    const standbyHealth = (await b.waitFor(/health \(plaintext, grpc\.health\.v1 only\) on (\S+)/))[1];
    const probe = (service: string) => runCli(["health", "coordinator", "--address", standbyHealth, "--insecure", ...(service ? ["--service", service] : [])]);
    expect((await probe("")).code).toBe(1);
    expect((await probe("fedsynth.v1.Liveness")).code).toBe(0);

    const op = ["--coordinator", address, "--credentials", join(dirA, "operator")];
    const sites = ["cleveland", "hungary", "va"];
    for (const site of sites) {
      const token = JSON.parse(ok(await runCli(["site", "token", ...op, "--site", site, "--json"]), `site token ${site}`).stdout);
      ok(await runCli(["site", "enroll", "--coordinator", address, "--name", site, "--token", token.token,
        "--ca-fingerprint", token.caFingerprint, "--data-dir", join(dir, "sites", site)]), `site enroll ${site}`);
    }
    const agents = sites.map((site) => {
      const agent = startSecureAgent({
        // VA dials the replicas themselves (no address in front of them): the agent tries each in turn.
        address: site === "va" ? `127.0.0.1:${portA},127.0.0.1:${portB}` : address,
        name: site, data: join(EXAMPLES, `${site}.csv`), dataDir: join(dir, "sites", site), epsilonCap: 1,
        // Hungary is slow: it holds each task for 10 s, so the driver dies with hungary's round-1 update still to
        // come (a loaded machine takes seconds per status call, which must not miss that window).
        env: site === "hungary" ? { FEDSYNTH_FAULT_TASK_DELAY_MS: "10000" } : {},
      });
      procs.push(agent);
      return agent;
    });
    await Promise.all(agents.map((ag) => ag.waitFor(/connected to the coordinator/)));

    const studyId = JSON.parse(ok(await runCli(["study", "create", ...op, "--name", "failover", "--schema", join(EXAMPLES, "schema.json"),
      ...sites.flatMap((s) => ["--site", s]), "--epsilon", "1", "--rounds", "2", "--secure-aggregation", "off", "--json"]), "study create").stdout).studyId as string;
    ok(await runCli(["study", "start", studyId, ...op]), "study start");
    const status = async () => JSON.parse(ok(await runCli(["study", "status", studyId, ...op, "--json"]), "study status").stdout);

    // Kill the driver once round 1 holds a submission but not hungary's.
    const midRound = await until(async () => {
      const s = await status();
      const submitted: string[] = s.roundDetails[0]?.submitted ?? [];
      return submitted.length > 0 && !submitted.includes("hungary") ? submitted : undefined;
    }, "a round-1 submission before hungary's");
    await a.stop("SIGKILL");

    await b.waitFor(/this replica holds the lease and drives the rounds/, 30_000);
    await b.waitFor(/listening on/);
    expect(b.output).toMatch(/resuming round/);
    expect((await probe("")).code).toBe(0);
    const afterFailover = await status();
    expect(afterFailover.state).toBe("running");
    for (const site of midRound) expect(afterFailover.roundDetails[0].submitted).toContain(site);

    const done = await until(async () => {
      const s = await status();
      return s.state === "running" || s.state === "created" ? undefined : s;
    }, "the study to end", 120_000);
    expect(done.state, done.statusMessage).toBe("completed");
    expect(done.completedRounds).toBe(2);
    for (const r of done.roundDetails) expect([...r.submitted].sort()).toEqual(sites);
    // Every agent came back, through the one address or to the next replica's, to the new driver.
    for (const ag of agents) expect(ag.output.match(/connected to the coordinator/g)?.length).toBeGreaterThanOrEqual(2);
    expect(agents[2].output).toMatch(new RegExp(`connected to the coordinator coordinator=127\\.0\\.0\\.1:${portB}`));
    expect(forwarder.routed).toContain(portB);

    // The ledger, exported from the new driver, verifies; each site has exactly one accepted charge a round.
    const ledgerFile = join(dir, "ledger.jsonl");
    ok(await runCli(["audit", "export", ...op, "--out", ledgerFile]), "audit export");
    ok(await runCli(["audit", "verify", ledgerFile, "--ca", join(dirA, "pki", "ca.pem")]), "audit verify");
    const charges = readFileSync(ledgerFile, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.kind === "charge");
    for (const site of sites) {
      const mine = charges.filter((c) => c.body.charge.siteName === site);
      expect(mine.map((c) => [c.body.charge.round, c.body.accepted]), site).toEqual([[1, true], [2, true]]);
    }
    for (const ag of agents) await ag.stop();
    for (const site of sites) {
      const store = new LocalStore(join(dir, "sites", site));
      const own = store.charges({ studyId });
      store.close();
      expect(own.map((c) => c.round)).toEqual([1, 2]);
      const view = done.participants.find((p: any) => p.siteName === site);
      expect(view.epsilonCharged).toBeCloseTo(own[1].epsilonStudyTotal, 12);
    }
  }, 240_000);

  it("the standby resumes a secure-aggregation round the killed driver left after masked inputs were summed", async () => {
    pg ??= await startPostgres();
    const storeUrl = pg.database("secure");
    const [dirA, dirB] = [join(dir, "secure-a"), join(dir, "secure-b")];
    ok(await runCli(["coordinator", "init", "--data-dir", dirA]), "coordinator init");
    cpSync(join(dirA, "pki"), join(dirB, "pki"), { recursive: true });
    const [portA, portB] = [await freePort(), await freePort()];
    const front = await startTcpForwarder([portA, portB]);
    const address = `127.0.0.1:${front.port}`;
    const replica = (name: string, dataDir: string, port: number) => {
      const p = new CliProcess(["coordinator", "start", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`, "--store", storeUrl, "--replica", name, "--lease-seconds", "3"]);
      procs.push(p);
      return p;
    };
    try {
      const a = replica("a", dirA, portA);
      await a.waitFor(/listening on/);
      const b = replica("b", dirB, portB);
      await b.waitFor(/standby: another replica drives the rounds/);
      const op = ["--coordinator", address, "--credentials", join(dirA, "operator")];
      const sites = ["cleveland", "hungary", "va"];
      const siteDir = (site: string) => join(dir, "secure-sites", site);
      for (const site of sites) {
        const token = JSON.parse(ok(await runCli(["site", "token", ...op, "--site", site, "--json"]), `site token ${site}`).stdout);
        ok(await runCli(["site", "enroll", "--coordinator", address, "--name", site, "--token", token.token,
          "--ca-fingerprint", token.caFingerprint, "--data-dir", siteDir(site)]), `site enroll ${site}`);
      }
      const agents = sites.map((site) => {
        const agent = startSecureAgent({
          address, name: site, data: join(EXAMPLES, `${site}.csv`), dataDir: siteDir(site), epsilonCap: 1,
          // Hungary's first masked input, charged at the site already, waits 15 s before it leaves: the driver dies
          // with the others' inputs in its running sum and hungary's to come (it goes to the new driver).
          env: site === "hungary" ? { FEDSYNTH_FAULT_MASKED_INPUT_DELAY_MS: "15000" } : {},
        });
        procs.push(agent);
        return agent;
      });
      await Promise.all(agents.map((ag) => ag.waitFor(/connected to the coordinator/)));

      const studyId = JSON.parse(ok(await runCli(["study", "create", ...op, "--name", "secure-failover", "--schema", join(EXAMPLES, "schema.json"),
        ...sites.flatMap((s) => ["--site", s]), "--epsilon", "1", "--rounds", "2", "--json"]), "study create").stdout).studyId as string;
      ok(await runCli(["study", "start", studyId, ...op]), "study start");
      const status = async () => JSON.parse(ok(await runCli(["study", "status", studyId, ...op, "--json"]), "study status").stdout);
      expect((await status()).secureThreshold).toBe(2); // secure aggregation by default for 3 sites: ⌈2·3/3⌉

      const inSum = await until(async () => {
        const submitted: string[] = (await status()).roundDetails[0]?.submitted ?? [];
        if (submitted.includes("hungary")) throw new Error("hungary's masked input arrived before the coordinator was killed: the test missed its window");
        return submitted.length > 0 ? submitted : undefined;
      }, "a masked input in the running sum before hungary's", 120_000);
      await a.stop("SIGKILL");

      await b.waitFor(/this replica holds the lease and drives the rounds/, 30_000);
      await b.waitFor(/secure aggregation session resumed from the store/, 30_000);
      expect(b.output).not.toMatch(/restarted during secure aggregation/);
      const afterFailover = await status();
      expect(afterFailover.state, afterFailover.statusMessage).toBe("running");
      for (const site of inSum) expect(afterFailover.roundDetails[0].submitted).toContain(site);

      const done = await until(async () => {
        const s = await status();
        return s.state === "running" || s.state === "created" ? undefined : s;
      }, "the study to end", 150_000);
      expect(done.state, done.statusMessage).toBe("completed");
      expect(done.completedRounds).toBe(2);
      for (const r of done.roundDetails) expect([...r.submitted].sort()).toEqual(sites);
      expect(agents[sites.indexOf("hungary")].output).toMatch(/sending the last message again, unchanged/);
      expect(b.output).toMatch(/masked input received again; it is in the running sum already \(no new charge\) site=hungary/);
      expect(b.output).not.toMatch(/secure-aggregation message refused/);

      // The ledger from the new driver verifies with every site's own copy; one accepted charge per site per round.
      const ledgerFile = join(dir, "secure-ledger.jsonl");
      ok(await runCli(["audit", "export", ...op, "--out", ledgerFile]), "audit export");
      for (const ag of agents) await ag.stop();
      const copies: string[] = [];
      for (const site of sites) {
        const file = join(dir, `secure-${site}.jsonl`);
        ok(await runCli(["audit", "export", "--data-dir", siteDir(site), "--out", file]), `audit export ${site}`);
        copies.push("--site-copy", `${site}=${file}`);
      }
      ok(await runCli(["audit", "verify", ledgerFile, "--ca", join(dirA, "pki", "ca.pem"), ...copies]), "audit verify");
      const entries = readFileSync(ledgerFile, "utf8").trim().split("\n").map((l) => JSON.parse(l));
      const charges = entries.filter((e) => e.kind === "charge");
      for (const site of sites) {
        const mine = charges.filter((c) => c.body.charge.siteName === site);
        expect(mine.map((c) => [c.body.charge.round, c.body.accepted]), site).toEqual([[1, true], [2, true]]);
        expect(mine[0].body.charge.mechanisms[0].kind).toBe("distributed-discrete-gaussian");
        const store = new LocalStore(siteDir(site));
        const own = store.charges({ studyId });
        store.close();
        expect(own.map((c) => c.round)).toEqual([1, 2]);
        const view = done.participants.find((p: any) => p.siteName === site);
        expect(view.epsilonCharged).toBeCloseTo(own[1].epsilonStudyTotal, 12);
      }
      // Round 1's pooled model came from all three sites' masked inputs.
      const release = entries.find((e) => e.kind === "release" && e.body.round === 1);
      expect([...release.body.contributors].sort()).toEqual(sites);
    } finally {
      await front.close();
    }
  }, 240_000);

  it("a driver that stops cleanly hands its lease over at once (with a lease far longer than the test)", async () => {
    pg ??= await startPostgres();
    const storeUrl = pg.database("handover");
    const [dirA, dirB] = [join(dir, "handover-a"), join(dir, "handover-b")];
    ok(await runCli(["coordinator", "init", "--data-dir", dirA]), "coordinator init");
    cpSync(join(dirA, "pki"), join(dirB, "pki"), { recursive: true });
    const start = (name: string, dataDir: string) => {
      const p = new CliProcess(["coordinator", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--store", storeUrl, "--replica", name, "--lease-seconds", "600"]);
      procs.push(p);
      return p;
    };
    const a = start("a", dirA);
    await a.waitFor(/listening on/);
    const b = start("b", dirB);
    await b.waitFor(/standby/);
    await a.stop("SIGTERM");
    expect(a.child.exitCode).toBe(0);
    expect(a.output).toMatch(/released the lease/);
    // Had the lease not been released, b would wait 600 s for it to expire.
    const m = await b.waitFor(/listening on (\S+)/, 30_000);
    const listed = ok(await runCli(["study", "list", "--coordinator", m[1], "--credentials", join(dirA, "operator"), "--json"]), "study list");
    expect(JSON.parse(listed.stdout)).toEqual([]);
  }, 120_000);
});

describe("coordinator start --store", () => {
  it("names a store URL it cannot use, and what to do", async () => {
    const dir = tempDir("fedsynth-store-url-");
    try {
      const notPg = await runCli(["coordinator", "start", "--data-dir", dir, "--insecure", "--store", "mysql://u:pw@db/x"]);
      expect(notPg.code).not.toBe(0);
      expect(notPg.stderr).toMatch(/--store mysql:\/\/u:\*\*\*@db\/x is not a postgres:\/\/ URL/);
      expect(notPg.stderr).not.toContain("pw");
      const port = await freePort();
      const down = await runCli(["coordinator", "start", "--data-dir", dir, "--insecure", "--store", `postgres://fedsynth:hunter2@127.0.0.1:${port}/x`]);
      expect(down.code).not.toBe(0);
      expect(down.stderr).toContain(`cannot connect to the PostgreSQL store postgres://fedsynth:***@127.0.0.1:${port}/x`);
      expect(down.stderr).toMatch(/check the URL/);
      expect(down.stderr).not.toContain("hunter2");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("site start refuses a replica address that is not HOST:PORT, naming it", async () => {
    const r = await runCli(["site", "start", "--coordinator", "127.0.0.1:7070,coord-b", "--name", "va", "--data", join(EXAMPLES, "va.csv"),
      "--data-dir", tempDir(), "--epsilon-cap", "1", "--insecure"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--coordinator "coord-b" is not HOST:PORT');
  });
});
