/**
 * The auditor's report as a person sees it: rendered to a file, opened in headless Chromium from
 * file:// (no server, no network), and checked in the DOM Chromium built — the verdict, every site's
 * name and one chart per site — and as a screenshot. Chromium is Debian's package, installed by .ci/run;
 * without it this test fails and says so rather than skip, so a report nobody opened is never "tested".
 */
import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { tempDir } from "./support/cli.js";
import type { ChargeEntry, LedgerEntry } from "../shared/ledger/entry.js";
import { verifyLedger } from "../shared/ledger/verify-ledger.js";
import { renderAuditReport } from "../shared/ledger/report/render-report.js";
import { buildReportTestLedger, HOSTILE_SITE, REPORT_SITES } from "../shared/ledger/report/report-test-ledger.js";

const CHROMIUM = "/usr/bin/chromium";
const run = promisify(execFile);

function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is not installed; this test opens the audit report in headless Chromium. Install it with: apt-get update && apt-get install -y chromium (.ci/run does this in CI)`);
  }
}

/** Headless Chromium with a throw-away profile, so that parallel runs share nothing. */
async function chromium(args: string[]): Promise<string> {
  const profile = tempDir("fedsynth-chromium-");
  const { stdout } = await run(CHROMIUM, [
    "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions", "--hide-scrollbars",
    `--user-data-dir=${profile}`, ...args,
  ], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

function writeReport(entries: LedgerEntry[], name: string): { file: string; url: string } {
  const file = join(tempDir("fedsynth-report-"), name);
  writeFileSync(file, renderAuditReport(entries, verifyLedger(entries), { generatedAt: new Date(Date.UTC(2026, 3, 20, 12)) }));
  return { file, url: pathToFileURL(file).href };
}

/** The text of the DOM: tags dropped, entities decoded as far as the checks need. */
function textOf(dom: string): string {
  return dom.replace(/<[^>]*>/g, " ").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, "&").replace(/\s+/g, " ");
}

describe("audit report in headless Chromium", () => {
  it("shows the verdict, every site and one chart per site, runs no script, and renders a screenshot", async () => {
    requireChromium();
    const { entries } = buildReportTestLedger();
    const { file, url } = writeReport(entries, "report.html");
    const started = Date.now();
    const dom = await chromium(["--dump-dom", url]);
    const text = textOf(dom);
    expect(text).toContain("Verified");
    expect(text).not.toContain("FAILED");
    for (const site of REPORT_SITES) expect(text, site).toContain(`Site ${site}`);
    expect(dom.match(/<svg class="chart"/g)).toHaveLength(REPORT_SITES.length);
    // The hostile site name is text in the browser's DOM, not an element.
    expect(dom).not.toMatch(/<script/i);
    expect(dom).not.toMatch(/<img/i);
    expect(text).toContain(HOSTILE_SITE);

    const png = join(file, "..", "report.png");
    await chromium([`--screenshot=${png}`, "--window-size=1200,2000", url]);
    expect(statSync(png).size).toBeGreaterThan(20_000);
    expect(readFileSync(png).subarray(1, 4).toString("latin1")).toBe("PNG");
    console.log(`audit report ${file}, screenshot ${png}: Chromium took ${Date.now() - started} ms`);
  }, 120_000);

  it("shows a tampered ledger as failed, at the entry that fails", async () => {
    requireChromium();
    const entries = structuredClone(buildReportTestLedger().entries) as LedgerEntry[];
    const index = entries.findIndex((e) => e.kind === "charge");
    (entries[index] as ChargeEntry).body.charge.epsilonTask = 0.001;
    const { url } = writeReport(entries, "tampered.html");
    const text = textOf(await chromium(["--dump-dom", url]));
    expect(text).toContain(`Verification FAILED at entry ${index}`);
    expect(text).toContain("the entry was changed");
    expect(text).not.toMatch(/✔ Verified/);
  }, 120_000);
});
