/**
 * `fedsynth audit export|verify|report`: the auditor's commands. Export reads a data directory (a coordinator's:
 * the privacy ledger up to its last signed head; a site agent's: every charge statement the site signed)
 * and writes JSONL. Verify needs nothing but the file (and, optionally, the consortium CA and sites' own
 * copies): it recomputes every hash, signature and epsilon itself and exits 0 only when all hold.
 */
import type { Command } from "commander";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { FedsynthError } from "../../shared/errors.js";
import {
  canonicalize, compareAgentCopy, describeVerification, exportJsonl, importJsonl, isWellFormedEntry, readLedgerLines, verifyLedgerInParallel, type AgentCharge,
  type LedgerEntry,
} from "../../shared/ledger/index.js";
import { renderAuditReport } from "../../shared/ledger/report/index.js";
import { collect } from "../options.js";
import { CREDENTIALS_ENV, withOperator } from "../connection.js";

/** The coordinator's chain up to its last head (entries after it are not yet signed), read without locking the store. */
function readCoordinatorLedger(path: string): { entries: LedgerEntry[]; unsigned: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const hasChain = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ledger_chain'").get();
    if (!hasChain) {
      throw new FedsynthError("failed-precondition", `${path} has no privacy ledger yet`, { hint: "start the coordinator once with this version: it creates the ledger" });
    }
    const all = (db.prepare("SELECT entry_json FROM ledger_chain ORDER BY seq").all() as { entry_json: string }[]).map((r) => JSON.parse(r.entry_json) as LedgerEntry);
    const lastHead = all.map((e) => e.kind).lastIndexOf("head");
    return { entries: all.slice(0, lastHead + 1), unsigned: all.length - lastHead - 1 };
  } finally {
    db.close();
  }
}

function readSiteCopy(path: string): AgentCharge[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const hasTable = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'signed_charges'").get();
    if (!hasTable) return [];
    const rows = db.prepare("SELECT s.statement_json, s.signature FROM signed_charges s JOIN charges c ON c.task_id = s.task_id ORDER BY c.at, c.round").all() as { statement_json: string; signature: string }[];
    return rows.map((r) => ({ charge: JSON.parse(r.statement_json), siteSignature: r.signature }));
  } finally {
    db.close();
  }
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command("audit").description("export and verify the privacy ledger (no coordinator needed)");

  audit
    .command("export")
    .description("write the ledger of a coordinator (its data directory, or over the operator API with auditor credentials), or a site agent's own signed charges, as JSONL")
    .option("--data-dir <dir>", "a coordinator's or a site agent's data directory")
    .option("--coordinator <host:port>", "instead of --data-dir: a running coordinator (with --credentials of an auditor or operator)")
    .option("--credentials <dir>", `with --coordinator: auditor or operator credentials (default: $${CREDENTIALS_ENV})`)
    .option("--insecure", "with --coordinator: plaintext to a development coordinator on loopback", false)
    .requiredOption("--out <file.jsonl>", "where to write it")
    .action(async (opts: { dataDir?: string; coordinator?: string; credentials?: string; insecure: boolean; out: string }) => {
      const out = resolve(opts.out);
      if (!!opts.dataDir === !!opts.coordinator) {
        throw new FedsynthError("invalid-argument", "audit export needs either --data-dir or --coordinator", {
          hint: "--data-dir DIR on the coordinator's or a site's host, or --coordinator HOST:PORT --credentials DIR from anywhere",
        });
      }
      if (opts.coordinator) {
        const bytes = await withOperator({ coordinator: opts.coordinator, credentials: opts.credentials, insecure: opts.insecure }, (c) => c.exportLedger());
        writeFileSync(out, bytes);
        process.stdout.write(`wrote the ledger of ${opts.coordinator} (${bytes.byteLength} bytes) to ${out}\n`);
        return;
      }
      const dir = resolve(opts.dataDir!);
      if (existsSync(join(dir, "coordinator.sqlite"))) {
        const { entries, unsigned } = readCoordinatorLedger(join(dir, "coordinator.sqlite"));
        writeFileSync(out, exportJsonl(entries));
        process.stdout.write(`wrote ${entries.length} ledger entries to ${out}${unsigned > 0 ? ` (${unsigned} newer entries are not signed yet and were left out; export again in a few seconds)` : ""}\n`);
      } else if (existsSync(join(dir, "site.sqlite"))) {
        const charges = readSiteCopy(join(dir, "site.sqlite"));
        writeFileSync(out, charges.map((c) => canonicalize(c) + "\n").join(""));
        process.stdout.write(`wrote the ${charges.length} charges this site signed to ${out} (check them against the coordinator's ledger with: fedsynth audit verify LEDGER.jsonl --site-copy NAME=${out})\n`);
      } else {
        throw new FedsynthError("not-found", `${dir} is neither a coordinator's nor a site agent's data directory (no coordinator.sqlite or site.sqlite)`, {
          hint: "pass the --data-dir the coordinator or the agent was started with",
        });
      }
    });

  audit
    .command("verify")
    .description("check a ledger export: the chain, every signature, every epsilon recomputed, every budget and cap; exit 0 only if all hold")
    .argument("<ledger.jsonl>")
    .option("--ca <ca.pem>", "the consortium CA: enrolment certificates must have been issued by it")
    .option("--site-copy <name=file.jsonl>", "a site's own export (fedsynth audit export on its data directory): every charge it signed must be in the ledger exactly (repeatable)", collect, [])
    .option("--json", "print the summary as JSON", false)
    .action(async (file: string, opts: { ca?: string; siteCopy: string[]; json: boolean }) => {
      const text = readFileSync(resolve(file));
      const caPem = opts.ca ? readFileSync(resolve(opts.ca), "utf8") : undefined;
      const result = await verifyLedgerInParallel(readLedgerLines(text), { caPem });
      if (!result.ok) {
        process.stderr.write(`${file}: FAILED at ${describeVerification(result)} (line ${result.index + 1})\n`);
        process.exitCode = 1;
        return;
      }
      const entries = importJsonl(text, file);
      let copiesOk = true;
      const copies = opts.siteCopy.map((spec) => {
        const at = spec.indexOf("=");
        if (at <= 0) throw new FedsynthError("invalid-argument", `--site-copy ${JSON.stringify(spec)} is not NAME=FILE.jsonl`);
        const name = spec.slice(0, at);
        const charges = readFileSync(resolve(spec.slice(at + 1)), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as AgentCharge);
        const comparison = compareAgentCopy(entries, name, charges);
        copiesOk &&= comparison.ok;
        return comparison;
      });
      if (opts.json) process.stdout.write(JSON.stringify({ ok: copiesOk, summary: result.summary, siteCopies: copies }, null, 2) + "\n");
      else {
        process.stdout.write(`${file}: ${describeVerification(result)}\n`);
        for (const s of result.summary.spend) process.stdout.write(`  ${s.siteName.padEnd(16)} ${s.studyId}  epsilon ${Number(s.epsilon.toPrecision(6))} (recomputed from ${s.charges} charges)\n`);
        for (const c of copies) {
          process.stdout.write(c.ok
            ? `  site copy of ${c.siteName}: all ${c.matched} charges it signed are in the ledger exactly\n`
            : `  site copy of ${c.siteName}: MISMATCH — dropped ${JSON.stringify(c.dropped)}, altered ${JSON.stringify(c.altered)}, unexpected ${JSON.stringify(c.unexpected)}\n`);
        }
      }
      if (!copiesOk) process.exitCode = 1;
    });

  audit
    .command("report")
    .description("write a self-contained HTML page of a ledger export for people: each site's budget over time, every charge, release and refusal, and the verdict")
    .argument("<ledger.jsonl>")
    .requiredOption("--out <report.html>", "where to write the page (it opens in a browser from the file, with no server)")
    .option("--ca <ca.pem>", "the consortium CA, as for audit verify")
    .option("--title <text>", "the page's title")
    .action(async (file: string, opts: { out: string; ca?: string; title?: string }) => {
      const text = readFileSync(resolve(file));
      const lines = readLedgerLines(text);
      const verification = await verifyLedgerInParallel(lines, { caPem: opts.ca ? readFileSync(resolve(opts.ca), "utf8") : undefined });
      // A failed ledger is still shown, entry by entry up to where it can be read, under a FAILED verdict.
      const entries = lines.filter(isWellFormedEntry) as LedgerEntry[];
      writeFileSync(resolve(opts.out), renderAuditReport(entries, verification, { ...(opts.title ? { title: opts.title } : {}) }));
      process.stdout.write(`wrote ${resolve(opts.out)}: ${verification.ok ? "verified" : `verification FAILED at ${describeVerification(verification)}`}\n`);
      if (!verification.ok) process.exitCode = 1;
    });
}
