/** The auditor's HTML report of a ledger (see render-report.ts). */
export { renderAuditReport, type AuditReportOptions } from "./render-report.js";
export { escapeHtml } from "./html.js";
