/** The ledger's releases, refusals and studies, each as one table in chain order. */
import { formatDelta, formatEpsilon, formatTime } from "./format.js";
import { html, type Html, type HtmlPart } from "./html.js";
import type { Placed, ReportModel } from "./report-model.js";

export function renderReleases(model: ReportModel): Html {
  const names = studyNames(model);
  const rows = model.releases.map((r) => html`<tr${unverified(r)}>${timeCell(r)}
<td class="study">${studyCell(names, r.body.studyId)}</td><td class="num">${r.body.round}</td>
<td>${r.body.modelId ? html`${r.body.modelId}<br>` : ""}<span class="mono small">SHA-256 ${r.body.modelSha256}</span></td>
<td>${r.body.contributors.join(", ")}</td></tr>`);
  return table("releases", "Releases", "Every pooled model released, and the sites whose accepted updates are in it.", ["Time", "Study", "Round", "Model", "Contributors"], rows);
}

export function renderRefusals(model: ReportModel): Html {
  const names = studyNames(model);
  const rows = model.refusals.map((r) => html`<tr${unverified(r)}>${timeCell(r)}
<td>${r.body.siteName}</td><td class="study">${studyCell(names, r.body.studyId)}</td>
<td class="num">${r.body.round === null ? "whole study" : r.body.round}</td>
<td>${r.body.by === "site" ? "the site" : "the coordinator"}</td>
<td>${r.body.reason}${r.body.message ? html`: ${r.body.message}` : ""}${r.body.taskId ? html`<br><span class="muted small">task ${r.body.taskId}</span>` : ""}</td></tr>`);
  return table("refusals", "Refusals", "Work refused without a charge: nothing was spent.", ["Time", "Site", "Study", "Round", "Refused by", "Reason"], rows);
}

export function renderStudies(model: ReportModel): Html {
  const rows = model.studies.map((s) => {
    const b = s.body;
    const caps = Object.entries(b.siteCaps ?? {}).map(([site, cap]) => html`<br><span class="muted small">${site}: at most ε ${formatEpsilon(cap.epsilon)}, δ ${formatDelta(cap.delta)}</span>`);
    return html`<tr${unverified(s)}>${timeCell(s)}
<td class="study">${b.name}<br><span class="muted small">${b.studyId}</span></td><td>${b.engine}</td>
<td class="num">ε ${formatEpsilon(b.epsilon)}<br>δ ${formatDelta(b.delta)}</td><td class="num">${b.rounds}</td>
<td>${b.sites.join(", ")}${caps}</td></tr>`;
  });
  return table("studies", "Studies", "Each budget is per site, for the whole study.", ["Created", "Study", "Engine", "Budget per site", "Rounds", "Sites"], rows);
}

function table(id: string, title: string, note: string, headings: string[], rows: Html[]): Html {
  const body = rows.length === 0
    ? html`<p>None.</p>`
    : html`<div class="scroll"><table><thead><tr>${headings.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table></div>`;
  return html`<section id="${id}"><h2>${title}</h2><p class="muted">${note}</p>${body}</section>`;
}

function studyNames(model: ReportModel): Map<string, string> {
  return new Map(model.studies.map((s) => [s.body.studyId, s.body.name]));
}

function studyCell(names: ReadonlyMap<string, string>, studyId: string): HtmlPart {
  const name = names.get(studyId);
  return name === undefined ? studyId : html`${name}<br><span class="muted small">${studyId}</span>`;
}

function unverified(p: Placed<unknown>): HtmlPart {
  return p.verified ? "" : html` class="unverified"`;
}

function timeCell(p: Placed<unknown>): Html {
  return html`<td class="nowrap">${formatTime(p.at)}${p.verified ? "" : html`<br><span class="badge">not verified</span>`}</td>`;
}
