/**
 * `fedsynth simulate`: one study end to end on this machine with real processes — a coordinator and one
 * site agent per site, each agent reading only its own file, all talking gRPC over loopback.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { FedsynthError } from "../../shared/errors.js";
import { loadSchema } from "../../shared/schema/parse-schema.js";
import { readTable } from "../../shared/schema/read-csv.js";
import { getEngine } from "../../shared/engines/registry.js";
import type { BudgetSplit } from "../../shared/engines/engine.js";
import { validateSiteName } from "../../coordinator/study/study-request.js";
import { OperatorClient, type StudyView } from "../operator-client.js";
import { TERMINAL_STATES } from "../study-view.js";
import { sampleModelFile } from "../commands/sample.js";
import { modelForSampling } from "../model-for-sampling.js";
import { ProcessGroup, waitForAddress } from "./processes.js";
import { LocalStore } from "../../site-agent/local-store.js";
import { initConsortium } from "../../coordinator/consortium.js";
import { enrollSite } from "../../site-agent/enroll.js";
import { channelCredentials } from "../../shared/crypto/pki/index.js";
import { createLogger } from "../../shared/telemetry/log.js";
import { readCredentials } from "../connection.js";

export interface SimulationSite {
  name: string;
  file: string;
}

export interface SimulationOptions {
  schema: string;
  sites: SimulationSite[];
  engine?: string;
  epsilon: number;
  delta: number;
  rounds?: number;
  rows?: number;
  seed?: number;
  out: string;
  summary?: string;
  workdir?: string;
  /** Per-site budget caps; by default each site's cap is exactly the study budget. */
  siteEpsilonCaps?: Record<string, number>;
  secureAggregation?: "auto" | "on" | "off";
  secureThreshold?: number;
  securePhaseTimeoutSeconds?: number;
  /** How the rounds share each site's budget; absent: the engine's default (equal). */
  budgetSplit?: BudgetSplit;
  onProgress?(study: StudyView): void;
  onLog?(line: string): void;
}

export interface SimulationSummary {
  engine: string;
  /** Why the study has this engine (the coordinator's default choice, or "named by the operator"). */
  engineReason: string;
  rounds: number;
  seconds: number;
  studyId: string;
  /** 0 without secure aggregation. */
  secureThreshold: number;
  budgetSplit: BudgetSplit;
  epsilon: number;
  delta: number;
  rows: number;
  out: string;
  workdir: string | null;
  sites: Record<string, { rows: number; epsilon: number; delta: number; clipped: Record<string, number> }>;
}

export function parseSiteSpec(spec: string): SimulationSite {
  const eq = spec.indexOf("=");
  if (eq <= 0 || eq === spec.length - 1) {
    throw new FedsynthError("invalid-argument", `--site ${JSON.stringify(spec)} is not NAME=FILE.csv`, { hint: "e.g. --site cleveland=data/cleveland.csv" });
  }
  const name = spec.slice(0, eq);
  validateSiteName(name, "--site name");
  return { name, file: resolve(spec.slice(eq + 1)) };
}

export async function runSimulation(opts: SimulationOptions): Promise<SimulationSummary> {
  const started = Date.now();
  const say = opts.onLog ?? (() => undefined);
  if (opts.sites.length === 0) throw new FedsynthError("invalid-argument", "simulate needs at least one --site NAME=FILE.csv");
  const names = new Set<string>();
  for (const s of opts.sites) {
    if (names.has(s.name)) throw new FedsynthError("invalid-argument", `site ${s.name} is given twice`, { hint: "give each --site a distinct name" });
    names.add(s.name);
  }
  if (opts.engine) getEngine(opts.engine); // an unknown name fails here, before any process starts
  const schemaPath = resolve(opts.schema);
  const schema = await loadSchema(schemaPath);
  const schemaJson = readFileSync(schemaPath, "utf8");

  // Read every file here first: a bad file fails now with its exact location, before any process starts.
  const siteRows: Record<string, { rows: number; clipped: Record<string, number> }> = {};
  for (const s of opts.sites) {
    const { table, clipped, warnings } = await readTable(s.file, schema);
    for (const w of warnings) say(`${s.name}: ${w.message}`);
    siteRows[s.name] = { rows: table.rowCount, clipped };
  }
  const totalRows = Object.values(siteRows).reduce((a, s) => a + s.rows, 0);

  const keep = opts.workdir !== undefined;
  const workdir = keep ? resolve(opts.workdir!) : mkdtempSync(join(tmpdir(), "fedsynth-simulate-"));
  const logs = join(workdir, "logs");
  mkdirSync(logs, { recursive: true });
  const group = new ProcessGroup();
  const onSigint = () => {
    group.killAll();
    process.stderr.write("\ninterrupted: stopped the coordinator and every site agent\n");
    process.exit(130);
  };
  process.once("SIGINT", onSigint);
  process.once("SIGTERM", onSigint);
  let client: OperatorClient | undefined;
  let succeeded = false;
  try {
    // The same path a real consortium takes: a CA, mutual TLS, a one-time token per site, enrolment.
    const coordinatorDir = join(workdir, "coordinator");
    const pki = await initConsortium(coordinatorDir, { name: "fedsynth simulation", hostnames: [], ips: [] });
    const listeners: ((l: string) => void)[] = [];
    const coordinator = group.start("coordinator", [
      "coordinator", "start", "--data-dir", coordinatorDir, "--listen", "127.0.0.1:0",
      ...(opts.securePhaseTimeoutSeconds ? ["--secure-phase-timeout", String(opts.securePhaseTimeoutSeconds)] : []),
    ], join(logs, "coordinator.log"), (line) => listeners.forEach((fn) => fn(line)));
    const address = await waitForAddress({ onLine: (fn) => listeners.push(fn) }, coordinator);
    say(`coordinator listening on ${address} with mutual TLS (log: ${join(logs, "coordinator.log")})`);
    client = new OperatorClient(address, channelCredentials(readCredentials(pki.operatorDir)));
    const quiet = createLogger("simulate", { write: () => undefined });
    await Promise.all(opts.sites.map(async (s) => {
      const { token, caFingerprint } = await client!.issueEnrollmentToken(s.name, 600);
      await enrollSite({ coordinator: address, siteName: s.name, token, caFingerprint, dataDir: join(workdir, "sites", s.name), log: quiet });
    }));
    say(`enrolled ${opts.sites.length} sites with one-time tokens`);
    for (const s of opts.sites) {
      const cap = opts.siteEpsilonCaps?.[s.name] ?? opts.epsilon;
      group.start(`site agent ${s.name}`, [
        "site", "start", "--coordinator", address, "--name", s.name, "--data", s.file, "--data-dir", join(workdir, "sites", s.name),
        "--epsilon-cap", String(cap), "--delta-cap", String(opts.delta), "--reconnect-max-seconds", "2",
      ], join(logs, `${s.name}.log`));
    }
    say(`started ${opts.sites.length} site agents: ${opts.sites.map((s) => s.name).join(", ")}`);
    const watcher = group.watchForExit();

    const created = await client.createStudy({
      // The simulation's operator holds every site's file, so the cohort size it declares is simply theirs.
      name: "simulate", schemaJson, engine: opts.engine ?? "", expectedRows: totalRows, epsilon: opts.epsilon, delta: opts.delta, rounds: opts.rounds ?? 0,
      sites: opts.sites.map((s) => s.name), minSites: 0, roundDeadlineSeconds: 3600,
      secureAggregation: opts.secureAggregation ?? "auto", secureThreshold: opts.secureThreshold, budgetSplit: opts.budgetSplit,
    });
    await client.startStudy(created.studyId);
    let study = created;
    const c = client;
    const poll = async () => {
      for (;;) {
        study = await c.getStudy(created.studyId);
        opts.onProgress?.(study);
        if (TERMINAL_STATES.has(study.state)) return study;
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    study = await Promise.race([poll(), watcher.failed]);
    if (study.state !== "completed") {
      throw new FedsynthError("failed-precondition", `the study ${study.state}: ${study.statusMessage}`, {
        hint: `the site agents' and the coordinator's logs are in ${logs}${keep ? "" : " (kept because the study did not complete)"}`,
      });
    }

    const modelPath = join(workdir, "pooled-model.fsm");
    const exported = await client.exportModel(created.studyId);
    writeFileSync(modelPath, modelForSampling(exported.bytes, `the model of study ${created.studyId}`));
    const rows = opts.rows ?? totalRows;
    await sampleModelFile(modelPath, rows, resolve(opts.out), opts.seed);
    watcher.disarm();
    // Stop the agents before reading their own ledgers, so that every write has landed.
    await group.stopAll();

    const sites: SimulationSummary["sites"] = {};
    for (const s of opts.sites) {
      const fromSite = siteCharge(join(workdir, "sites", s.name), created.studyId);
      const fromCoordinator = study.participants.find((p) => p.siteName === s.name);
      if (!fromCoordinator || Math.abs(fromCoordinator.epsilonCharged - fromSite.epsilon) > 1e-9 * Math.max(1, fromSite.epsilon)) {
        throw new FedsynthError("internal", `site ${s.name} recorded epsilon ${fromSite.epsilon} but the coordinator recorded ${fromCoordinator?.epsilonCharged}`, {
          hint: `compare ${join(workdir, "sites", s.name, "status.json")} with the coordinator's ledger`,
        });
      }
      sites[s.name] = { rows: siteRows[s.name].rows, epsilon: fromSite.epsilon, delta: fromSite.delta, clipped: siteRows[s.name].clipped };
    }
    const summary: SimulationSummary = {
      engine: study.engine, engineReason: study.engineReason, rounds: study.rounds, seconds: (Date.now() - started) / 1000, studyId: created.studyId,
      secureThreshold: created.secureThreshold, budgetSplit: created.budgetSplit,
      epsilon: opts.epsilon, delta: opts.delta, rows, out: resolve(opts.out), workdir: keep ? workdir : null, sites,
    };
    if (opts.summary) writeFileSync(resolve(opts.summary), JSON.stringify(summary, null, 2) + "\n");
    succeeded = true;
    return summary;
  } catch (err) {
    if (!keep) process.stderr.write(`fedsynth: keeping the work directory for inspection: ${workdir}\n`);
    throw err;
  } finally {
    client?.close();
    await group.stopAll();
    if (succeeded && !keep) rmSync(workdir, { recursive: true, force: true });
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
  }
}

/** What the site itself recorded as spent in the study, from its own ledger. */
function siteCharge(siteDir: string, studyId: string): { epsilon: number; delta: number } {
  if (!existsSync(join(siteDir, "site.sqlite"))) throw new FedsynthError("internal", `the site agent left no ledger in ${siteDir}`);
  const store = new LocalStore(siteDir);
  try {
    const charges = store.charges({ studyId });
    const last = charges[charges.length - 1];
    return { epsilon: last?.epsilonStudyTotal ?? 0, delta: last?.delta ?? 0 };
  } finally {
    store.close();
  }
}
