/**
 * `fedsynth demo` (`npm run demo`): the four-hospital UCI Heart Disease federation. Each site's file is split
 * into training rows and a held-out 20%, `fedsynth simulate` runs on the training rows, and the result is
 * scored against the held-out patients, whom the synthesizer never saw.
 */
import type { Command } from "commander";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SeededRng } from "../../shared/random/rng.js";
import { FedsynthError } from "../../shared/errors.js";
import { formatReport } from "../../evaluation/index.js";
import { packageRoot } from "../package-root.js";
import { evaluateFiles } from "./evaluate.js";
import { parseCount, parsePositive } from "../options.js";

const SITES = ["cleveland", "hungary", "switzerland", "va"];
const HOLDOUT_SHARE = 0.2;

/** Splits a headered CSV's data lines at random into training and holdout files. */
function splitCsv(source: string, trainPath: string, holdoutPath: string, rng: SeededRng): void {
  const lines = readFileSync(source, "utf8").split(/\r?\n/).filter((l) => l.length > 0);
  const [header, ...rows] = lines;
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  const cut = Math.round(rows.length * HOLDOUT_SHARE);
  writeFileSync(holdoutPath, [header, ...rows.slice(0, cut)].join("\n") + "\n");
  writeFileSync(trainPath, [header, ...rows.slice(cut)].join("\n") + "\n");
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("run the bundled four-hospital heart-disease federation end to end and print a fidelity report")
    .option("--workdir <dir>", "where to put the split data, the synthetic CSV, the report and every process's log", "fedsynth-demo")
    .option("--engine <name>", "synthesizer engine (default: the coordinator chooses one for the study, as simulate does)")
    .option("--epsilon <e>", "each hospital's privacy budget", parsePositive("--epsilon"), 1)
    .option("--rounds <n>", "federated rounds (default: the engine's)", parseCount("--rounds"))
    .option("--seed <n>", "seed for the holdout split and for sampling", parseCount("--seed", 0), 7)
    .action(async (opts: { workdir: string; engine?: string; epsilon: number; rounds?: number; seed: number }) => {
      const examples = join(packageRoot(), "examples", "heart-disease");
      const workdir = resolve(opts.workdir);
      const data = join(workdir, "data");
      mkdirSync(data, { recursive: true });
      const rng = new SeededRng(opts.seed);
      const train: string[] = [];
      const holdout: string[] = [];
      for (const site of SITES) {
        const t = join(data, `${site}.train.csv`);
        const h = join(data, `${site}.holdout.csv`);
        splitCsv(join(examples, `${site}.csv`), t, h, rng);
        train.push(t);
        holdout.push(h);
      }
      const synthetic = join(workdir, "synthetic.csv");
      const summary = join(workdir, "summary.json");
      clearPreviousRun(join(workdir, "run"));
      const schema = join(examples, "schema.json");
      process.stdout.write(`fedsynth demo: four hospitals (${SITES.join(", ")}), each keeping ${100 * HOLDOUT_SHARE}% of its patients aside for scoring\n\n`);
      const args = [
        fileURLToPath(new URL("../main.js", import.meta.url)), "simulate", "--schema", schema,
        ...SITES.flatMap((s, i) => ["--site", `${s}=${train[i]}`]),
        "--epsilon", String(opts.epsilon), ...(opts.rounds ? ["--rounds", String(opts.rounds)] : []), "--seed", String(opts.seed),
        "--out", synthetic, "--summary", summary, "--workdir", join(workdir, "run"),
        ...(opts.engine ? ["--engine", opts.engine] : []),
      ];
      const code = await new Promise<number | null>((r) => spawn(process.execPath, args, { stdio: "inherit" }).once("exit", r));
      if (code !== 0) throw new FedsynthError("failed-precondition", `fedsynth simulate failed (exit code ${code})`, { hint: `see the logs in ${join(workdir, "run", "logs")}` });
      const report = await evaluateFiles({ schema, real: train, synthetic, holdout, target: "num", seed: opts.seed });
      const reportPath = join(workdir, "report.json");
      writeFileSync(reportPath, JSON.stringify(report, null, 2) + "\n");
      process.stdout.write(`\n${formatReport(report)}\n\n`);
      process.stdout.write(`synthetic patients: ${synthetic}\nfidelity report:    ${reportPath}\nsimulate summary:   ${summary}\n`);
    });
}

/** What a demo's simulate leaves in its run folder: a rerun starts a new consortium there. */
const RUN_ENTRIES = new Set(["coordinator", "sites", "logs", "pooled-model.fsm"]);

/**
 * Every demo is a new consortium (a new CA, new enrolments), so the previous demo's run folder goes; a
 * folder holding anything else is not ours to delete.
 */
function clearPreviousRun(run: string): void {
  if (!existsSync(run)) return;
  const foreign = readdirSync(run).filter((e) => !RUN_ENTRIES.has(e));
  if (foreign.length > 0) {
    throw new FedsynthError("failed-precondition", `${run} holds files a demo did not write (${foreign.slice(0, 3).join(", ")})`, {
      hint: "give the demo a fresh --workdir, or move those files away",
    });
  }
  process.stdout.write(`replacing the previous demo run in ${run}\n`);
  rmSync(run, { recursive: true, force: true });
}
