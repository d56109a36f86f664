import { describe, expect, it } from "vitest";
import type { ChargeEntry, LedgerEntry } from "../entry.js";
import { buildTestLedger } from "../test-ledger.js";
import { verifyLedger } from "../verify-ledger.js";
import { escapeHtml } from "./html.js";
import { renderAuditReport } from "./render-report.js";
import { buildReportTestLedger, HOSTILE_MESSAGE, HOSTILE_SITE, HOSTILE_STUDY_NAME, REPORT_SITES } from "./report-test-ledger.js";

const AT = new Date(Date.UTC(2026, 3, 20, 12));
const report = (entries: LedgerEntry[], opts = {}) => renderAuditReport(entries, verifyLedger(entries), { generatedAt: AT, ...opts });
/** Every start tag of the page: ledger text is escaped, so each "<" that remains opens real markup. */
const tags = (page: string) => page.match(/<[a-zA-Z][^>]*>/g) ?? [];

describe("renderAuditReport", () => {
  it("shows every section of a mixed ledger, with a contents list that links to them", () => {
    const { entries } = buildReportTestLedger();
    const page = report(entries, { title: "Consortium audit 2026" });
    expect(page.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(page).toContain("<h1>Consortium audit 2026</h1>");
    for (const id of ["summary", "sites", "site-1", "site-2", "site-3", "releases", "refusals", "studies"]) {
      expect(page, id).toContain(`id="${id}"`);
      expect(page, id).toContain(`href="#${id}"`);
    }
    expect(page).toMatch(/✔<\/span> Verified/);
    expect(page).toContain("report-test-ledger");
    expect(page).toMatch(/SHA-256 [0-9a-f]{4}( [0-9a-f]{4}){15}/);
    expect(page).toContain("2026-04-20 12:00:00 UTC");
    // One chart per site, each with one spend line per study it was invited to and that study's budget.
    expect(page.match(/<svg class="chart"/g)).toHaveLength(3);
    expect(page.match(/<path class="spend"/g)).toHaveLength(6);
    expect(page.match(/<line class="budget"/g)).toHaveLength(6);
    // 12 charges, one row each; the rejected one says why.
    expect(page.match(/<circle class="mark/g)).toHaveLength(12);
    expect(page).toContain("rejected</span>: the update&#39;s norm was &lt;too large&gt; &amp; &quot;odd&quot;");
    expect(page).toContain("re-enrolled 1×");
    const releases = page.slice(page.indexOf('id="releases"'), page.indexOf('id="refusals"'));
    expect(releases).toContain("heart-model-3");
    expect(releases).toContain("charité-berlin, uppsala");
    const refusals = page.slice(page.indexOf('id="refusals"'), page.indexOf('id="studies"'));
    expect(refusals).toContain("whole study");
    expect(refusals).toContain("the coordinator");
    expect(refusals).toContain("deadline: the site did not answer in time");
    const studies = page.slice(page.indexOf('id="studies"'));
    expect(studies).toContain("heart failure 2026");
    expect(studies).toContain("neural");
    expect(studies).toContain("independent");
    expect(studies).toMatch(/uppsala: at most ε 0\.\d+, δ 1e-5/);
  });

  it("escapes every string from the ledger: no markup, no attribute, no script gets in", () => {
    const { entries } = buildReportTestLedger();
    const page = report(entries);
    for (const hostile of [HOSTILE_SITE, HOSTILE_STUDY_NAME, HOSTILE_MESSAGE]) {
      expect(page).not.toContain(hostile);
      expect(page).toContain(escapeHtml(hostile));
    }
    expect(page).not.toMatch(/<script|<img|<b>/i);
    expect(tags(page).filter((t) => /\son[a-z]+=/i.test(t))).toEqual([]);
    expect(REPORT_SITES.every((s) => page.includes(`<h3>Site ${escapeHtml(s)}</h3>`))).toBe(true);
  });

  it("escapes a hostile title and the text of a ledger that fails verification", () => {
    const entries = structuredClone(buildTestLedger().entries) as LedgerEntry[];
    const charge = entries.find((e) => e.kind === "charge") as ChargeEntry;
    charge.body.charge.siteName = `"><script>alert(1)</script>`;
    const page = report(entries, { title: "<script>x</script>" });
    expect(page).not.toMatch(/<script/i);
    expect(page).toContain("&lt;script&gt;x&lt;/script&gt;");
    expect(page).toContain("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
  });

  it("shows a failed verification as failed, at its entry, with its reason, and marks what follows", () => {
    const entries = structuredClone(buildTestLedger().entries) as LedgerEntry[];
    const index = entries.findIndex((e) => e.kind === "release");
    (entries[index] as { body: { round: number } }).body.round = 1;
    const page = report(entries);
    expect(page).toContain(`Verification FAILED at entry ${index}</p>`);
    expect(page).toMatch(/class="reason">the recorded hash [0-9a-f]{64} is not the hash of the entry&#39;s content/);
    expect(page).not.toMatch(/✔|Verified</);
    expect(page).toContain("(verification FAILED)</title>");
    const releases = page.slice(page.indexOf('id="releases"'), page.indexOf('id="refusals"'));
    expect(releases).toContain('<tr class="unverified">');
    expect(releases).toContain("not verified");
  });

  it("shows an empty ledger, and a verification of another ledger, as failed", () => {
    const empty = renderAuditReport([], verifyLedger([]), { generatedAt: AT });
    expect(empty).toContain("Verification FAILED at entry 0");
    expect(empty).toContain("the ledger is empty");
    const other = renderAuditReport(buildTestLedger().entries, verifyLedger(buildTestLedger().entries), { generatedAt: AT });
    expect(other).toContain("Verification FAILED");
    expect(other).toContain("of another ledger");
  });

  it("references nothing outside the page, and its policy forbids loading anything", () => {
    for (const page of [report(buildTestLedger().entries), report(buildReportTestLedger().entries)]) {
      expect(page).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;`);
      for (const tag of tags(page)) {
        expect(tag).not.toMatch(/\s(src|srcset|action|formaction|xlink:href|poster|background)=/i);
        expect(tag).not.toMatch(/url\(/i);
        for (const [, target] of tag.matchAll(/\shref="([^"]*)"/g)) expect(target).toMatch(/^#[a-z0-9-]+$/);
      }
      expect(tags(page).filter((t) => /^<(script|link|img|iframe|object|embed|image|use|foreignObject)\b/i.test(t))).toEqual([]);
      const style = page.slice(page.indexOf("<style>"), page.indexOf("</style>"));
      expect(style).not.toMatch(/url\(|@import|@font-face|\/\//i);
    }
    // A ledger without such text in it leaves no address anywhere on the page.
    const plain = report(buildTestLedger().entries);
    expect(plain).not.toMatch(/https?:|\/\/|file:|data:/i);
  });
});
