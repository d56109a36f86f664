/**
 * The auditor's report: one self-contained HTML page describing a ledger and its verification, for
 * data-protection officers and ethics boards. It must open from a file, offline, years from now: so the
 * style and the charts are inline, there is no script at all, and a Content-Security-Policy forbids
 * the page from loading anything — should ledger text ever slip past the escaping (html.ts), it could
 * still neither run a script nor call out.
 *
 * A pure function of its inputs: the CLI (`fedsynth audit report`) verifies, then calls it and writes
 * the result to a file.
 */
import type { LedgerEntry } from "../entry.js";
import type { LedgerVerification } from "../verify-ledger.js";
import { html } from "./html.js";
import { renderReleases, renderRefusals, renderStudies } from "./ledger-tables.js";
import { renderContents, renderHeader } from "./report-header.js";
import { buildReportModel } from "./report-model.js";
import { REPORT_STYLE } from "./report-style.js";
import { renderSites } from "./site-section.js";

export interface AuditReportOptions {
  /** The page's title and heading (default "Privacy ledger audit report"). */
  title?: string;
  /** When the report was made (default: now); shown in the summary. */
  generatedAt?: Date;
}

const CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/** `verification` must be verifyLedger's verdict on these same entries; one about other entries is shown as a failure. */
export function renderAuditReport(entries: readonly LedgerEntry[], verification: LedgerVerification, opts: AuditReportOptions = {}): string {
  const model = buildReportModel(entries, verification);
  const title = opts.title ?? "Privacy ledger audit report";
  const generatedAt = opts.generatedAt ?? new Date();
  const verdict = model.verdict.ok ? "verified" : "verification FAILED";
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} — ${model.ledgerId ?? "ledger"} (${verdict})</title>
<style>${REPORT_STYLE}</style>
</head>
<body>
<main>
${renderHeader(model, title, generatedAt)}
${renderContents(model)}
${renderSites(model)}
${renderReleases(model)}
${renderRefusals(model)}
${renderStudies(model)}
</main>
</body>
</html>
`.toString();
}
