/**
 * The report's style sheet, inline so that the page opens from a file with no network: system fonts
 * only, text colours of at least 4.5:1 contrast on their backgrounds (WCAG AA), and a print layout
 * (a report is often filed as PDF).
 */
import { trusted } from "./html.js";

export const REPORT_STYLE = trusted(`
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1b1f24; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 48px; background: #ffffff; min-height: 100vh; }
h1 { font-size: 1.9rem; margin: 0 0 16px; line-height: 1.25; }
h2 { font-size: 1.4rem; margin: 40px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #d5d9de; }
h3 { font-size: 1.15rem; margin: 32px 0 4px; }
a { color: #0b5cad; }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace; word-break: break-all; }
.small { font-size: 0.85rem; }
.muted { color: #4d5560; }
.warn { color: #a0001c; }
.nowrap { white-space: nowrap; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.verdict { border: 2px solid; border-left-width: 10px; border-radius: 6px; padding: 12px 20px; margin: 0 0 20px; }
.verdict p { margin: 6px 0; }
.verdict-title { font-size: 1.5rem; font-weight: 700; }
.verdict.ok { background: #e7f5ec; border-color: #1a7f37; color: #0f3d1e; }
.verdict.failed { background: #fdeceb; border-color: #b3261e; color: #5c0f0b; }
.verdict .reason { font-weight: 600; font-size: 1.05rem; overflow-wrap: anywhere; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 20px; margin: 0; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; min-width: 0; }
.toc { background: #f4f6f9; border: 1px solid #d5d9de; border-radius: 6px; padding: 8px 20px; margin: 24px 0; }
.toc h2 { border: 0; margin: 4px 0; font-size: 1.1rem; }
.toc ol { margin: 4px 0; padding-left: 24px; }
.toc ol ol { columns: 3 12em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 0.92rem; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid #dde1e6; }
th { background: #eef1f4; font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.study { min-width: 9em; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.unverified { background: #fff6e0 !important; }
.badge { display: inline-block; font-size: 0.75rem; font-weight: 700; padding: 0 6px; border-radius: 4px; background: #7a4d00; color: #ffffff; }
.yes { color: #1a6b32; font-weight: 600; }
.no { color: #a0001c; font-weight: 600; }
.chart { display: block; width: 100%; height: auto; margin: 12px 0 4px; }
.chart .grid { stroke: #e3e6ea; stroke-width: 1; }
.chart .axis { stroke: #5b636d; stroke-width: 1; }
.chart .tick { font-size: 12px; fill: #3d444d; }
.chart .axis-label { font-size: 13px; fill: #1b1f24; }
.chart .spend { fill: none; stroke-width: 2.5; stroke-linejoin: round; }
.chart .budget { stroke-width: 1.5; stroke-dasharray: 7 5; }
.chart .mark { stroke-width: 2; }
.legend { list-style: none; padding: 0; margin: 4px 0 12px; font-size: 0.92rem; }
.legend li { margin: 2px 0; }
.swatch { display: inline-block; width: 22px; height: 4px; margin-right: 8px; vertical-align: middle; border-radius: 2px; }
.swatch.dashed { background: repeating-linear-gradient(90deg, #5b636d 0 6px, transparent 6px 10px); }
@media print {
  body { background: #ffffff; }
  main { max-width: none; padding: 0; }
  .site, table { break-inside: auto; }
  tr, .chart { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
`);
