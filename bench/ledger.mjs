// `node bench/ledger.mjs [entries]` (after `npx tsc -p tsconfig.json`): builds a privacy ledger of
// 10,000 entries (or as many as asked) and verifies it, printing JSON. Not a test: machines are noisy,
// so nothing here passes or fails; compare runs on the same machine (and mind `load_average`).
//
// The ledger is the sample consortium of shared/ledger/sample-ledger.ts: 40 sites, 5 rounds per study,
// every study with its own mechanism parameters (so the accountant is not flattered by repeats), a
// coordinator head after every round. Each verification starts with an empty epsilon cache, as an
// auditor's first run would; the build itself already filled the process-wide one.
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = (p) => join(root, "dist", p);
const { buildSampleLedger } = await import(dist("shared/ledger/sample-ledger.js"));
const { verifyLedger } = await import(dist("shared/ledger/verify-ledger.js"));
const { verifyLedgerInParallel } = await import(dist("shared/ledger/verify-ledger-parallel.js"));
const { exportJsonl, importJsonl } = await import(dist("shared/ledger/jsonl.js"));
const { EpsilonCache } = await import(dist("shared/ledger/epsilon-cache.js"));

const target = Number(process.argv[2] ?? 10_000);
const round3 = (x) => +x.toFixed(3);

/** Wall-clock and CPU seconds of one (possibly async) run. */
async function timed(run) {
  const cpu = process.cpuUsage();
  const t = performance.now();
  const value = await run();
  const used = process.cpuUsage(cpu);
  return { value, seconds: round3((performance.now() - t) / 1000), cpu_seconds: round3((used.user + used.system) / 1e6) };
}

function check(result, what) {
  if (!result.ok) throw new Error(`${what}: the sample ledger did not verify: entry ${result.index}: ${result.reason}`);
  return result;
}

const results = { machine: { node: process.version, cpus: cpus().length, load_average: loadavg().map((x) => +x.toFixed(2)) } };

const build = await timed(() => buildSampleLedger({ entries: target, sites: 40, rounds: 5 }));
const entries = build.value.entries;
const text = exportJsonl(entries);

const parallel = await timed(async () => check(await verifyLedgerInParallel(entries, { epsilonCache: new EpsilonCache() }), "parallel"));
const sequential = await timed(() => check(verifyLedger(entries, { epsilonCache: new EpsilonCache() }), "sequential"));
const fromJsonl = await timed(async () => check(await verifyLedgerInParallel(importJsonl(text), { epsilonCache: new EpsilonCache() }), "jsonl"));
const warm = await timed(async () => check(await verifyLedgerInParallel(entries), "warm"));

const summary = parallel.value.summary;
Object.assign(results, {
  entries: entries.length,
  kinds: summary.kinds,
  sites: summary.sites.length,
  studies: summary.studies.length,
  jsonl_mb: round3(Buffer.byteLength(text) / 1e6),
  // The headline: verifyLedgerInParallel (signatures on worker threads), cold epsilon cache.
  verify_seconds: parallel.seconds,
  verify_cpu_seconds: parallel.cpu_seconds,
  verify_sequential_seconds: sequential.seconds,
  verify_jsonl_import_and_verify_seconds: fromJsonl.seconds,
  verify_warm_cache_seconds: warm.seconds,
  entries_per_second: Math.round(entries.length / parallel.seconds),
  build_seconds: build.seconds,
});
console.log(JSON.stringify(results, null, 2));
