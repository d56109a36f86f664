/**
 * One section per site: its spend chart and the table of its charges. The epsilons shown are the
 * recomputed ones (report-model.ts); the site's own recorded figures may only be higher, and
 * verification refuses a ledger where they are lower.
 */
import { describeMechanisms, formatDelta, formatEpsilon, formatTime } from "./format.js";
import { html, type Html } from "./html.js";
import type { ChargeRow, ReportModel, SiteReport } from "./report-model.js";
import { renderSpendChart, STUDY_COLOURS, type ChartStudy } from "./spend-chart.js";

export function renderSites(model: ReportModel): Html {
  const studies = new Map<string, ChartStudy>(
    model.studies.map((s, i) => [s.body.studyId, { studyId: s.body.studyId, name: s.body.name, budget: s.body.epsilon, createdAt: s.at, colour: STUDY_COLOURS[i % STUDY_COLOURS.length] }]),
  );
  const range = { from: model.firstAt ?? 0, to: model.lastAt ?? 0 };
  const sections = model.sites.map((site, i) => renderSite(model, site, i + 1, studies, range));
  return html`<section id="sites">
<h2>Spend per site</h2>
<p class="muted">Each chart shows one site's cumulative epsilon in each of its studies, recomputed from the recorded mechanisms, against the study's budget (dashed). Within a study a site's charges are composed exactly; across studies they are added.</p>
${sections.length > 0 ? sections : html`<p>No site enrolled or was charged.</p>`}
</section>`;
}

function renderSite(model: ReportModel, site: SiteReport, n: number, studies: ReadonlyMap<string, ChartStudy>, range: { from: number; to: number }): Html {
  const own = site.studyIds.map((id) => studies.get(id)).filter((s): s is ChartStudy => s !== undefined);
  // Across studies spends add up (budget-tracker.ts): the last total of each study, summed.
  const last = new Map<string, number>();
  for (const c of site.charges) last.set(c.body.studyId, c.studyEpsilon ?? last.get(c.body.studyId) ?? 0);
  const overall = [...last.values()].reduce((a, b) => a + b, 0);
  const refusals = model.refusals.filter((r) => r.body.siteName === site.name).length;
  const enrolled = site.enrolledAt === null ? "never enrolled" : html`enrolled ${formatTime(site.enrolledAt)}${site.enrolments > 1 ? html` (and re-enrolled ${site.enrolments - 1}×)` : ""}`;
  const cap = site.cap ? html`cap ε ${formatEpsilon(site.cap.epsilon)}, δ ${formatDelta(site.cap.delta)} over all its studies` : "no cap of its own";
  return html`<section class="site" id="site-${n}">
<h3>Site ${site.name}</h3>
<p class="muted">${enrolled} · ${cap} · spent ε ${formatEpsilon(overall)} over all its studies · ${site.charges.length} charges · ${refusals} refusals</p>
${renderSpendChart(site, own, range, `chart-${n}`)}
${renderCharges(site.charges, studies)}
</section>`;
}

function renderCharges(charges: readonly ChargeRow[], studies: ReadonlyMap<string, ChartStudy>): Html {
  if (charges.length === 0) return html`<p>No charges.</p>`;
  const rows = charges.map((c) => {
    const study = studies.get(c.body.studyId);
    const budget = study ? html` <span class="muted">of ${formatEpsilon(study.budget)}</span>` : "";
    const verdict = c.accepted ? html`<span class="yes">accepted</span>` : html`<span class="no">rejected</span>${c.reason ? html`: ${c.reason}` : ""}`;
    return html`<tr${c.verified ? "" : html` class="unverified"`}>
<td class="nowrap">${formatTime(c.at)}${c.verified ? "" : html`<br><span class="badge">not verified</span>`}</td>
<td class="study">${study ? study.name : c.body.studyId}<br><span class="muted small">${c.body.studyId}</span></td>
<td class="num">${c.body.round}</td>
<td class="small">${describeMechanisms(c.body.mechanisms)} <span class="muted">at δ ${formatDelta(c.body.delta)}</span></td>
<td class="num">${formatEpsilon(c.epsilonTask)}</td>
<td class="num">${formatEpsilon(c.studyEpsilon)}${budget}</td>
<td>${verdict}</td>
</tr>`;
  });
  return html`<div class="scroll"><table>
<caption class="sr-only">Charges of the site</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Study</th><th scope="col">Round</th><th scope="col">Mechanisms</th><th scope="col">ε of charge</th><th scope="col">Study total</th><th scope="col">Update</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}
