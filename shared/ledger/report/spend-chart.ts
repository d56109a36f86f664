/**
 * One site's spend as an inline SVG step chart: for each study, the site's cumulative epsilon
 * (recomputed) over time, and the study's budget as a dashed line of the same colour. Spend only moves
 * at a charge, so the line is a step, not a slope: between charges nothing was spent. Each study keeps
 * its colour on every site's chart; the colours are the Okabe–Ito set, told apart by people with
 * colour-vision deficiencies, and the table under the chart gives every number as text.
 */
import { epsilonScale, timeScale } from "./chart-scale.js";
import { formatEpsilon, formatTime } from "./format.js";
import { html, type Html } from "./html.js";
import type { ChargeRow, SiteReport } from "./report-model.js";

/** Okabe–Ito, without its yellow (too faint on white). */
export const STUDY_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

export interface ChartStudy {
  studyId: string;
  name: string;
  budget: number;
  createdAt: number;
  colour: string;
}

const W = 900;
const H = 300;
const M = { left: 64, right: 20, top: 16, bottom: 44 };

/** `studies` holds the site's studies that were created (a charge in an uncreated study has no budget to draw). */
export function renderSpendChart(site: SiteReport, studies: readonly ChartStudy[], range: { from: number; to: number }, id: string): Html {
  const byStudy = new Map<string, ChargeRow[]>();
  for (const c of site.charges) if (c.studyEpsilon !== null) byStudy.set(c.body.studyId, [...(byStudy.get(c.body.studyId) ?? []), c]);
  const series = studies.map((study) => ({ study, charges: byStudy.get(study.studyId) ?? [] }));
  const max = Math.max(0, ...studies.map((s) => s.budget), ...site.charges.map((c) => c.studyEpsilon ?? 0));
  const x = timeScale(range.from, range.to, M.left, W - M.right);
  const y = epsilonScale(max, H - M.bottom, M.top);
  const right = W - M.right;
  const grid = y.ticks.map((t) => html`<line class="grid" x1="${M.left}" x2="${right}" y1="${y(t)}" y2="${y(t)}"/><text class="tick" x="${M.left - 8}" y="${y(t) + 4}" text-anchor="end">${y.label(t)}</text>`);
  const xTicks = x.ticks.map((t, i) => {
    const anchor = i === 0 ? "start" : i === x.ticks.length - 1 ? "end" : "middle";
    return html`<line class="axis" x1="${x(t)}" x2="${x(t)}" y1="${H - M.bottom}" y2="${H - M.bottom + 5}"/><text class="tick" x="${x(t)}" y="${H - M.bottom + 19}" text-anchor="${anchor}">${x.label(t)}</text>`;
  });
  const drawn = series.map(({ study, charges }) => {
    const start = Math.max(range.from, Math.min(study.createdAt, ...charges.map((c) => c.at)));
    const budget = html`<line class="budget" stroke="${study.colour}" x1="${x(start)}" x2="${right}" y1="${y(study.budget)}" y2="${y(study.budget)}"><title>${study.name}: budget ε ${formatEpsilon(study.budget)}</title></line>`;
    let path = `M${n(x(start))},${n(y(0))}`;
    for (const c of charges) path += `H${n(x(c.at))}V${n(y(c.studyEpsilon!))}`;
    path += `H${n(right)}`;
    const marks = charges.map((c) => html`<circle class="${c.accepted ? "mark" : "mark rejected"}" stroke="${study.colour}" fill="${c.accepted ? study.colour : "#ffffff"}" cx="${n(x(c.at))}" cy="${n(y(c.studyEpsilon!))}" r="4"><title>${study.name}, round ${c.body.round}, ${formatTime(c.at)}: ε ${formatEpsilon(c.epsilonTask)}, total ${formatEpsilon(c.studyEpsilon)}${c.accepted ? "" : " (update rejected, still spent)"}</title></circle>`);
    return html`${budget}<path class="spend" stroke="${study.colour}" d="${path}"/>${marks}`;
  });
  const label = `Cumulative epsilon of site ${site.name} per study over time, with each study's budget as a dashed line`;
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${id}-title">
<title id="${id}-title">${label}</title>
${grid}${xTicks}
<line class="axis" x1="${M.left}" x2="${right}" y1="${H - M.bottom}" y2="${H - M.bottom}"/>
<line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}"/>
<text class="axis-label" transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">cumulative ε</text>
<text class="axis-label" x="${(M.left + right) / 2}" y="${H - 6}" text-anchor="middle">time (UTC)</text>
${drawn}
</svg>
${legend(site, series)}`;
}

function legend(site: SiteReport, series: { study: ChartStudy; charges: ChargeRow[] }[]): Html {
  if (series.length === 0) return html`<p class="legend">Site ${site.name} was not invited to any study.</p>`;
  const items = series.map(({ study, charges }) => {
    const spent = charges.at(-1)?.studyEpsilon ?? 0;
    return html`<li><span class="swatch" style="background:${study.colour}"></span>${study.name} <span class="muted">(${study.studyId})</span>: spent ε ${formatEpsilon(spent)} of budget ${formatEpsilon(study.budget)}</li>`;
  });
  return html`<ul class="legend">${items}<li><span class="swatch dashed"></span>dashed: the study's budget · ● accepted update · ○ rejected update (still spent)</li></ul>`;
}

/** Coordinates rounded to a tenth of a unit: finer than a pixel, shorter text. */
function n(v: number): string {
  return String(Math.round(v * 10) / 10);
}
