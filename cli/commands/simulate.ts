/** `fedsynth simulate`: the whole federation on one machine. Its flags are a stable contract. */
import type { Command } from "commander";
import { SingleBar, Presets } from "cli-progress";
import { budgetSplitOption, collect, parseCount, parsePositive, parseProbability, usage } from "../options.js";
import { parseSiteSpec, runSimulation, type SimulationSummary } from "../simulate/run-simulation.js";
import type { StudyView } from "../operator-client.js";
import { withCliTelemetry } from "./sample.js";

export function registerSimulateCommand(program: Command): void {
  program
    .command("simulate")
    .description("run one study end to end on this machine: a real coordinator and one real site agent per --site, over gRPC on loopback")
    .requiredOption("--schema <schema.json>", "the study's public schema")
    .requiredOption("--site <name=file.csv>", "a site and its data file (repeat for each site)", collect)
    .option("--engine <name>", "synthesizer engine (default: the coordinator chooses one from the schema and the files' row count; the summary's engineReason says why)")
    .option("--epsilon <e>", "each site's total privacy budget for the study", parsePositive("--epsilon"), 1)
    .option("--delta <d>", "each site's delta for the study", parseProbability("--delta"), 1e-5)
    .option("--rounds <n>", "federated rounds (default: the engine's; neural under secure aggregation: 2)", parseCount("--rounds"))
    .option("--rows <n>", "synthetic rows to write (default: as many as the sites hold together)", parseCount("--rows"))
    .option("--seed <n>", "seed for sampling the synthetic rows (DP noise is never seeded)", parseCount("--seed", 0))
    .requiredOption("--out <synthetic.csv>", "where to write the synthetic rows")
    .option("--summary <summary.json>", "write a JSON summary: engine, rounds, seconds, and each site's rows and charged epsilon")
    .option("--workdir <dir>", "keep everything here: DIR/coordinator, DIR/sites/NAME, DIR/logs (default: a temporary directory, removed)")
    .option("--site-epsilon-cap <name=e>", "give a site a budget cap other than the study's epsilon (repeatable)", collect, [])
    .option("--secure-aggregation <mode>", "auto (on for 3 or more sites), on or off: the coordinator sees only the sum of the sites' updates, each carrying its share of the noise", "auto")
    .option("--secure-threshold <t>", "secure aggregation: the fewest sites in any unmasked sum (default ⌈2n/3⌉)", parseCount("--secure-threshold"))
    .addOption(budgetSplitOption())
    .option("--secure-phase-timeout <seconds>", "secure aggregation: how long a phase waits for a silent site", parseCount("--secure-phase-timeout"))
    .option("--quiet", "no progress output", false)
    .addHelpText("after", `
Example:
  fedsynth simulate --schema examples/heart-disease/schema.json \\
    --site cleveland=examples/heart-disease/cleveland.csv --site hungary=examples/heart-disease/hungary.csv \\
    --epsilon 1 --out synthetic.csv --summary summary.json`)
    .action(async (opts) => {
      const caps: Record<string, number> = {};
      for (const spec of opts.siteEpsilonCap as string[]) {
        const [name, value] = spec.split("=");
        const cap = Number(value);
        if (!name || !(cap > 0)) throw usage(`--site-epsilon-cap ${JSON.stringify(spec)} is not NAME=EPSILON`);
        caps[name] = cap;
      }
      if (!["auto", "on", "off"].includes(opts.secureAggregation)) {
        throw usage(`--secure-aggregation must be auto, on or off, not ${JSON.stringify(opts.secureAggregation)}`);
      }
      const progress = opts.quiet ? undefined : createProgress();
      let summary: SimulationSummary;
      try {
        summary = await withCliTelemetry("simulate", () => runSimulation({
          schema: opts.schema, sites: (opts.site as string[]).map(parseSiteSpec), engine: opts.engine, epsilon: opts.epsilon,
          delta: opts.delta, rounds: opts.rounds, rows: opts.rows, seed: opts.seed, out: opts.out, summary: opts.summary,
          workdir: opts.workdir, siteEpsilonCaps: caps, onProgress: progress?.update, onLog: opts.quiet ? undefined : progress?.log,
          secureAggregation: opts.secureAggregation, secureThreshold: opts.secureThreshold, securePhaseTimeoutSeconds: opts.securePhaseTimeout,
          budgetSplit: opts.budgetSplit,
        }));
      } finally {
        progress?.stop();
      }
      const lines = [
        `wrote ${summary.rows} synthetic rows to ${summary.out}`,
        `engine ${summary.engine}, ${summary.rounds} round(s), ${summary.seconds.toFixed(1)} s, ${summary.secureThreshold > 0 ? `secure aggregation (threshold ${summary.secureThreshold} of ${Object.keys(summary.sites).length})` : "updates noised at each site, no secure aggregation"}${summary.budgetSplit === "annealed" ? ", budget annealed over the rounds" : ""}`,
        ...Object.entries(summary.sites).map(([name, s]) => `  ${name.padEnd(14)} ${String(s.rows).padStart(7)} rows  charged epsilon=${Number(s.epsilon.toPrecision(6))} delta=${s.delta}`),
      ];
      if (opts.summary) lines.push(`summary: ${opts.summary}`);
      if (summary.workdir) lines.push(`work directory (stores and logs): ${summary.workdir}`);
      process.stdout.write(lines.join("\n") + "\n");
    });
}

/** A progress bar on a terminal; plain lines when output goes to a file or CI log. */
function createProgress(): { update(s: StudyView): void; log(line: string): void; stop(): void } {
  const tty = process.stderr.isTTY;
  let bar: SingleBar | undefined;
  let lastLine = "";
  return {
    log(line: string) {
      if (bar) bar.stop();
      bar = undefined;
      process.stderr.write(line + "\n");
    },
    update(s: StudyView) {
      const round = s.roundDetails[s.roundDetails.length - 1];
      const sites = round ? `${round.submitted.length}/${round.submitted.length + round.pending.length} sites` : "";
      if (tty) {
        if (!bar) {
          bar = new SingleBar({ format: "  rounds {bar} {value}/{total} · {sites} · {status}", hideCursor: true, stream: process.stderr }, Presets.shades_classic);
          bar.start(s.rounds, 0, { sites, status: "" });
        }
        bar.update(s.completedRounds, { sites, status: s.statusMessage.slice(0, 60) });
        return;
      }
      const line = `round ${Math.min(s.completedRounds + 1, s.rounds)}/${s.rounds}: ${s.statusMessage}`;
      if (line !== lastLine) process.stderr.write(line + "\n");
      lastLine = line;
    },
    stop() {
      bar?.stop();
    },
  };
}
