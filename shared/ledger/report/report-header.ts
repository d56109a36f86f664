/**
 * The top of the report: what ledger this is, whether it verified — in words, before anything else,
 * since every number below is only as good as that verdict — and a table of contents.
 */
import { formatTime, keyFingerprint } from "./format.js";
import { html, type Html } from "./html.js";
import type { ReportModel, Verdict } from "./report-model.js";

export function renderHeader(model: ReportModel, title: string, generatedAt: Date): Html {
  const charges = model.sites.flatMap((s) => s.charges);
  const rejected = charges.filter((c) => !c.accepted).length;
  const span = model.firstAt !== null && model.lastAt !== null ? html`${formatTime(model.firstAt)} to ${formatTime(model.lastAt)}` : "—";
  const key = model.coordinatorPublicKey;
  return html`<header id="summary">
<h1>${title}</h1>
${renderVerdict(model.verdict)}
<dl class="facts">
<dt>Ledger id</dt><dd class="mono">${model.ledgerId ?? "none (no genesis entry)"}</dd>
<dt>Coordinator key</dt><dd>${key === null ? "none (no genesis entry)" : html`<span class="mono">${keyFingerprint(key)}</span><br><span class="muted small">Ed25519 public key ${key}</span>`}</dd>
<dt>Entries</dt><dd>${model.entries}${model.unreadable > 0 ? html` <strong class="warn">(${model.unreadable} could not be read and are not shown)</strong>` : ""}</dd>
${model.verdict.ok ? html`<dt>Last head</dt><dd>seq ${model.verdict.headSeq}, hash <span class="mono small">${model.verdict.headHash}</span></dd>` : ""}
<dt>Period</dt><dd>${span}</dd>
<dt>Contents</dt><dd>${model.sites.length} sites, ${model.studies.length} studies, ${charges.length} charges (${rejected} of them rejected updates, which still count as spent), ${model.releases.length} releases, ${model.refusals.length} refusals</dd>
<dt>Report generated</dt><dd>${formatTime(generatedAt.getTime())}</dd>
</dl>
</header>`;
}

function renderVerdict(v: Verdict): Html {
  if (v.ok) {
    return html`<section class="verdict ok" aria-label="verification verdict">
<p class="verdict-title"><span aria-hidden="true">✔</span> Verified</p>
<p>Every entry's hash, every site's signature on its charges, every coordinator signature and every epsilon were recomputed from the ledger itself, and every site stayed within its study budgets and its caps. The ledger ends in a coordinator-signed head (seq ${v.headSeq}) that pins all of it.</p>
</section>`;
  }
  const where = v.seq !== null && v.seq !== v.index ? html`entry ${v.index} (seq ${v.seq})` : html`entry ${v.index}`;
  return html`<section class="verdict failed" aria-label="verification verdict">
<p class="verdict-title"><span aria-hidden="true">✘</span> Verification FAILED at ${where}</p>
<p class="reason">${v.reason}</p>
<p>Entries before it passed every check; from it on, entries are shown marked <span class="badge">not verified</span> and nothing in them can be relied on. The figures in this report are still recomputed from the recorded mechanisms, not copied from the ledger.</p>
</section>`;
}

export function renderContents(model: ReportModel): Html {
  const sites = model.sites.map((s, i) => html`<li><a href="#site-${i + 1}">${s.name}</a></li>`);
  return html`<nav class="toc" aria-label="contents">
<h2>Contents</h2>
<ol>
<li><a href="#summary">Summary and verdict</a></li>
<li><a href="#sites">Spend per site</a>${sites.length > 0 ? html`<ol>${sites}</ol>` : ""}</li>
<li><a href="#releases">Releases</a> (${model.releases.length})</li>
<li><a href="#refusals">Refusals</a> (${model.refusals.length})</li>
<li><a href="#studies">Studies</a> (${model.studies.length})</li>
</ol>
</nav>`;
}
