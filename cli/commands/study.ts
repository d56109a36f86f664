/** `fedsynth study ...`: operator commands against a running coordinator. */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { OperatorClient, StudyView } from "../operator-client.js";
import { addConnectionOptions, withOperator } from "../connection.js";
import { loadSchema } from "../../shared/schema/parse-schema.js";
import { budgetSplitOption, collect, parseCount, parsePositive, parseProbability, usage } from "../options.js";
import { formatStudy, watchStudy } from "../study-view.js";


export function registerStudyCommands(program: Command): void {
  const study = program.command("study").description("create, start, watch and cancel studies on a coordinator");

  addConnectionOptions(study.command("create").description("create a study (it starts only when you run `study start`)"))
    .requiredOption("--name <name>", "a short name for the study")
    .requiredOption("--schema <schema.json>", "the study's public schema")
    .requiredOption("--site <name>", "an invited site (repeat for each site)", collect)
    .option("--engine <name>", "synthesizer engine (default: the coordinator chooses from the schema and --expected-rows, and the status says why)", "")
    .option("--expected-rows <n>", "the cohort size all sites hold together, as the study protocol declares it (public; the default engine choice uses it)", parseCount("--expected-rows", 0), 0)
    .option("--epsilon <e>", "each site's total privacy budget for the study", parsePositive("--epsilon"), 1)
    .option("--delta <d>", "each site's delta for the study", parseProbability("--delta"), 1e-5)
    .option("--rounds <n>", "number of federated rounds (default: the engine's; neural under secure aggregation: 2)", parseCount("--rounds"), 0)
    .option("--min-sites <n>", "sites that must submit for a round to count (default: all invited)", parseCount("--min-sites", 0), 0)
    .option("--round-deadline <seconds>", "how long a round waits for the sites", parseCount("--round-deadline", 0), 0)
    .option("--secure-aggregation <mode>", "auto (on for 3 or more sites), on or off: the coordinator sees only the sum of the sites' updates", "auto")
    .option("--secure-threshold <t>", "secure aggregation: the fewest sites in any unmasked sum (default ⌈2n/3⌉)", parseCount("--secure-threshold"), 0)
    .addOption(budgetSplitOption())
    .option("--json", "print the study as JSON", false)
    .action(async (opts) => {
      if (!["auto", "on", "off"].includes(opts.secureAggregation)) {
        throw usage(`--secure-aggregation must be auto, on or off, not ${JSON.stringify(opts.secureAggregation)}`);
      }
      await loadSchema(resolve(opts.schema)); // fail here, with the file's own name, before anything is sent
      const schemaJson = readFileSync(resolve(opts.schema), "utf8");
      const created = await withOperator(opts, (c) => c.createStudy({
        name: opts.name, schemaJson, engine: opts.engine, epsilon: opts.epsilon, delta: opts.delta, rounds: opts.rounds,
        sites: opts.site, minSites: opts.minSites, roundDeadlineSeconds: opts.roundDeadline,
        secureAggregation: opts.secureAggregation, secureThreshold: opts.secureThreshold, expectedRows: opts.expectedRows, budgetSplit: opts.budgetSplit,
      }));
      print(created, opts.json);
      if (!opts.json) process.stdout.write(`\nstart it with: fedsynth study start ${created.studyId} --coordinator ${opts.coordinator} --watch\n`);
    });

  addConnectionOptions(study.command("start").description("start a created study: the sites are invited, and round 1 begins once they have accepted"))
    .argument("<study-id>")
    .option("--watch", "follow the study until it ends (exit code 1 unless it completes)", false)
    .option("--json", "print the study as JSON", false)
    .action(async (studyId: string, opts) => {
      await withOperator(opts, async (c) => showOrWatch(c, await c.startStudy(studyId), opts));
    });

  addConnectionOptions(study.command("status").description("show a study: its state, its rounds and what each site has been charged"))
    .argument("<study-id>")
    .option("--watch", "follow the study until it ends (exit code 1 unless it completes)", false)
    .option("--json", "print the study as JSON", false)
    .action(async (studyId: string, opts) => {
      await withOperator(opts, async (c) => showOrWatch(c, await c.getStudy(studyId), opts));
    });

  addConnectionOptions(study.command("list").description("list the coordinator's studies"))
    .option("--json", "print JSON", false)
    .action(async (opts) => {
      const studies = await withOperator(opts, (c) => c.listStudies());
      if (opts.json) {
        process.stdout.write(JSON.stringify(studies, null, 2) + "\n");
        return;
      }
      if (studies.length === 0) process.stdout.write("no studies\n");
      for (const s of studies) {
        process.stdout.write(`${s.studyId}  ${s.state.padEnd(9)}  ${s.engine.padEnd(11)}  rounds ${s.completedRounds}/${s.rounds}  epsilon ${s.epsilon}  ${s.name}\n`);
      }
    });

  addConnectionOptions(study.command("cancel").description("cancel a study; rounds in flight are aborted"))
    .argument("<study-id>")
    .option("--reason <text>", "why, for the record", "")
    .action(async (studyId: string, opts) => {
      print(await withOperator(opts, (c) => c.cancelStudy(studyId, opts.reason)), false);
    });
}

async function showOrWatch(client: OperatorClient, study: StudyView, opts: { watch: boolean; json: boolean }): Promise<void> {
  if (!opts.watch) {
    print(study, opts.json);
    return;
  }
  const final = await watchStudy(client, study.studyId, process.stdout);
  if (final.state !== "completed") process.exitCode = 1;
}

function print(s: StudyView, json: boolean): void {
  process.stdout.write(json ? JSON.stringify(s, null, 2) + "\n" : formatStudy(s) + "\n");
}

