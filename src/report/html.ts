/**
 * The report page: one HTML file with its styles, script and data inlined (no CDN, no request: it
 * works from file://). The script builds the page with DOM calls and `textContent` only, so nothing
 * recorded (a task label, a stderr) can ever run as markup. Only the visible slice of the runs list is
 * drawn, so 10,000 runs load as fast as 100.
 */

import { escapeHtml } from '../util/html.js';
import type { ReportData } from './data.js';

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const STYLE = `
:root { --ok:#2e9d48; --changed:#d49a00; --failed:#d0352c; --skipped:#9aa0a6; --unreachable:#9b3fb5;
  --interrupted:#9b3fb5; --error:#d0352c; --crashed:#7a1f1a; --bg:#fafafa; --line:#e3e3e3; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: var(--bg); color: #222; }
header { padding: 10px 16px; background: #1f2933; color: #fff; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; } header a { color: #cfe3ff; }
main { display: grid; grid-template-columns: minmax(420px, 38%) 1fr; height: calc(100vh - 44px); }
#list { overflow: auto; border-right: 1px solid var(--line); }
#filters { position: sticky; top: 0; background: #fff; padding: 8px; display: flex; gap: 6px; border-bottom: 1px solid var(--line); }
#filters input { flex: 1; }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 3px 6px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
#runs tr { cursor: pointer; } #runs tr:hover { background: #eef3f8; } #runs tr.sel { background: #dde8f3; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; }
.s-ok { background: var(--ok); } .s-changed { background: var(--changed); } .s-failed { background: var(--failed); }
.s-skipped { background: var(--skipped); } .s-ignored { background: repeating-linear-gradient(45deg, var(--failed) 0 4px, var(--skipped) 4px 8px); } .s-unreachable, .s-interrupted { background: var(--unreachable); }
.s-error { background: var(--error); } .s-crashed { background: var(--crashed); }
#detail { overflow: auto; padding: 12px 18px; }
#detail h2 { margin: 0 0 4px; font-size: 17px; } #detail h3 { margin: 18px 0 6px; font-size: 15px; }
.meta { color: #555; } code, pre { font: 12px/1.35 ui-monospace, monospace; }
pre { background: #fff; border: 1px solid var(--line); padding: 8px; overflow: auto; max-height: 360px; }
.failure { border-left: 4px solid var(--failed); padding-left: 10px; margin-bottom: 10px; }
#grid { width: auto; }
#grid td.cell { width: 18px; min-width: 18px; height: 18px; padding: 0; border: 1px solid #fff; }
#grid th.task { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; font-size: 11px; max-height: 220px; overflow: hidden; }
.timeline-row { display: flex; align-items: center; gap: 8px; margin: 3px 0; }
.timeline-row .name { width: 140px; overflow: hidden; text-overflow: ellipsis; }
.track { position: relative; flex: 1; height: 16px; background: #eee; }
.bar { position: absolute; top: 0; height: 16px; min-width: 1px; opacity: .9; }
.more { margin: 8px; }
#deploys-box { padding: 8px 16px 24px; border-top: 1px solid var(--line); } #deploys-box h3 { margin: 4px 0; }
tr.site th { background: #eef1f4; } .note { color: #9b3fb5; }
#deploy-notes p { margin: 2px 0; }
td.num { text-align: right; }
`;

/** The page's script: reads the data, draws the list and, on click (or #run-<id>), one run. */
const SCRIPT = `
const data = JSON.parse(document.getElementById('report-data').textContent);
const F = { id: 0, at: 1, cmd: 2, env: 3, status: 4, exit: 5, ms: 6, who: 7, commit: 8, dirty: 9, ok: 10, changed: 11, failed: 12, hosts: 13, check: 14, argv: 15 };
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === 'class') e.className = v; else if (k === 'style') e.style.cssText = v; else e.setAttribute(k, v); }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
const badge = (s) => el('span', { class: 'badge s-' + s }, s);
const secs = (ms) => (ms / 1000).toFixed(1) + ' s';
const rts = (n) => (n || 0) + (n === 1 ? ' round trip' : ' round trips');
const when = (iso) => iso.replace('T', ' ').replace(/\\.\\d+Z$/, 'Z');
let shown = 200, filtered = data.runs, selected = null;

function applyFilter() {
  const q = $('q').value.trim().toLowerCase(), st = $('status').value;
  filtered = data.runs.filter((r) => (!st || r[F.status] === st) &&
    (!q || (r[F.cmd] + ' ' + r[F.env] + ' ' + r[F.hosts] + ' ' + r[F.who] + ' ' + r[F.argv] + ' ' + r[F.id]).toLowerCase().includes(q)));
  shown = 200; drawList();
}
function drawList() {
  const body = $('runs'); body.textContent = '';
  for (const r of filtered.slice(0, shown)) {
    const tr = el('tr', { 'data-id': r[F.id] }, el('td', {}, r[F.id]), el('td', {}, when(r[F.at])),
      el('td', {}, r[F.cmd] + (r[F.check] ? ' --check' : '')), el('td', {}, r[F.env]), el('td', {}, badge(r[F.status])),
      el('td', {}, r[F.ok] + '/' + r[F.changed] + '/' + r[F.failed]), el('td', {}, secs(r[F.ms])), el('td', {}, r[F.who]));
    if (r[F.id] === selected) tr.className = 'sel';
    tr.onclick = () => { location.hash = 'run-' + r[F.id]; };
    body.append(tr);
  }
  $('count').textContent = filtered.length + ' of ' + data.runs.length + ' runs';
  $('more').hidden = filtered.length <= shown;
}
function drawRun(id) {
  selected = id; drawList();
  const r = data.runs.find((x) => x[F.id] === id), d = $('detail'); d.textContent = '';
  if (!r) { d.append(el('p', {}, 'no run ' + id)); return; }
  d.append(el('h2', { id: 'run-title' }, 'run ' + id + ': ', badge(r[F.status])),
    el('div', { class: 'meta' }, el('code', {}, r[F.argv])),
    el('div', { class: 'meta' }, when(r[F.at]) + ' by ' + r[F.who] + ', took ' + secs(r[F.ms]) + ', exit ' + r[F.exit] +
      ', env ' + r[F.env] + ', commit ' + (r[F.commit] ? r[F.commit].slice(0, 12) + (r[F.dirty] ? ' (dirty)' : '') : 'none')));
  const det = data.details[id];
  if (!det) { d.append(el('p', {}, 'This run is older than the ' + data.detailCount + ' newest runs whose details the report carries: verdandi history show ' + id + ' prints it (or verdandi report --details N).')); return; }
  if (det.error) d.append(el('div', { class: 'failure' }, el('b', {}, 'error: '), det.error));
  // Failures first: what broke, with the command and its output.
  const failures = [];
  for (const h of det.hosts) {
    if (h.status === 'unreachable') failures.push([h.name, 'unreachable', h.detail || '', null]);
    for (const t of h.tasks) if (t.status === 'failed') failures.push([h.name, t.label, t.detail || '', t.failure]);
  }
  if (failures.length) {
    const box = el('section', { id: 'failures' }, el('h3', {}, 'Failures (' + failures.length + ')'));
    for (const [host, label, detail, out] of failures)
      box.append(el('div', { class: 'failure' }, el('b', {}, host), ' ', label, ' ', el('span', { class: 'meta' }, detail), out ? el('pre', {}, out) : null));
    d.append(box);
  }
  // The host × task grid.
  const labels = [];
  const seen = new Set();
  for (const h of det.hosts) for (const t of h.tasks) if (!seen.has(t.label)) { seen.add(t.label); labels.push(t.label); }
  const grid = el('table', { id: 'grid' });
  const head = el('tr', {}, el('th', {}, 'host'), el('th', {}, 'status'));
  for (const l of labels) head.append(el('th', { class: 'task', title: l }, l.length > 40 ? l.slice(0, 39) + '…' : l));
  grid.append(head);
  for (const h of det.hosts) {
    const byLabel = new Map(h.tasks.map((t) => [t.label, t]));
    const row = el('tr', { 'data-host': h.name }, el('td', {}, h.name), el('td', {}, badge(h.status)));
    for (const l of labels) {
      const t = byLabel.get(l);
      row.append(el('td', { class: 'cell' + (t ? ' s-' + t.status : ''), title: t ? l + ': ' + t.status + (t.detail ? ' (' + t.detail + ')' : '') + ', ' + secs(t.durationMs) + ', ' + rts(t.roundTrips) : l + ': not run' }));
    }
    grid.append(row);
  }
  d.append(el('h3', {}, 'Hosts × tasks'), grid);
  // Timeline per host: each task from where the host's previous one ended.
  const total = Math.max(1, r[F.ms], ...det.hosts.map((h) => h.startedMs + h.durationMs));
  const tl = el('section', { id: 'timeline' }, el('h3', {}, 'Timeline (' + secs(total) + ')'));
  for (const h of det.hosts) {
    const track = el('div', { class: 'track' });
    for (const t of h.tasks)
      track.append(el('div', { class: 'bar s-' + t.status, title: t.label + ': ' + secs(t.durationMs) + ', ' + rts(t.roundTrips),
        style: 'left:' + (100 * t.startedMs / total).toFixed(3) + '%;width:' + (100 * t.durationMs / total).toFixed(3) + '%' }));
    tl.append(el('div', { class: 'timeline-row' }, el('span', { class: 'name', title: h.name + ': ' + rts(h.roundTrips) }, h.name + ' (' + h.roundTrips + ' rt)'), track));
  }
  d.append(tl);
  // Per host, every task with its time and round trips (what the grid and the timeline only colour).
  const tasks = el('section', { id: 'tasks' }, el('h3', {}, 'Tasks'));
  for (const h of det.hosts) {
    const rows = el('tbody');
    for (const t of h.tasks)
      rows.append(el('tr', {}, el('td', {}, badge(t.status)), el('td', {}, t.label), el('td', {}, t.detail || ''),
        el('td', { class: 'num' }, secs(t.durationMs)), el('td', { class: 'num' }, t.roundTrips || 0)));
    tasks.append(el('details', { 'data-host': h.name }, el('summary', {}, h.name + ': ' + h.tasks.length + ' tasks, ' + secs(h.durationMs) + ', ' + rts(h.roundTrips)),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'status'), el('th', {}, 'task'), el('th', {}, 'detail'), el('th', {}, 'took'), el('th', {}, 'round trips'))), rows)));
  }
  d.append(tasks);
  const diffs = [];
  for (const h of det.hosts) for (const t of h.tasks) if (t.diff) diffs.push([h.name, t.label, t.diff]);
  if (diffs.length) {
    const box = el('section', { id: 'diffs' }, el('h3', {}, 'Diffs'));
    for (const [host, label, diff] of diffs) box.append(el('details', {}, el('summary', {}, host + ' ' + label), el('pre', {}, diff)));
    d.append(box);
  }
}
function drawDeploys() {
  // Per site, newest first: this history's deploys and rollbacks, merged with the hosts' own logs.
  const D = data.deploys, body = $('deploys');
  body.textContent = '';
  const sites = [...new Set(D.rows.map((r) => r[0]))].sort();
  const where = { both: 'here and on the host', here: 'here', host: 'host only' };
  for (const site of sites) {
    body.append(el('tr', { class: 'site' }, el('th', { colspan: '8' }, site)));
    for (const r of D.rows.filter((x) => x[0] === site).slice(0, 200)) {
      const [, host, action, release, commit, branch, by, time, outcome, step, from, runId, source] = r;
      const status = /^(deployed|rolled back)$/.test(outcome) ? 'ok' : outcome === 'interrupted' ? 'interrupted' : 'failed';
      const what = action === 'rollback' ? 'rollback to ' + release + (from ? ' (from ' + from + ')' : '') : release;
      const run = runId ? el('a', { href: '#run-' + runId }, 'run ' + runId) : '';
      body.append(el('tr', { 'data-site': site, 'data-release': release, 'data-source': source },
        el('td', {}, host), el('td', {}, what), el('td', {}, commit.slice(0, 12) + (branch ? ' (' + branch + ')' : '')),
        el('td', {}, by), el('td', {}, when(time)), el('td', {}, badge(status), ' ', outcome + (step ? ' at ' + step : '')),
        el('td', {}, where[source]), el('td', {}, run)));
    }
  }
  const notes = $('deploy-notes');
  notes.textContent = '';
  if (!D.hostsRead) notes.append(el('p', { class: 'meta' }, 'From this history only: verdandi report --env <env> --hosts adds the deploys recorded on the hosts (from any machine).'));
  for (const n of D.notes) notes.append(el('p', { class: 'meta note' }, n));
  $('deploys-box').hidden = $('to-deploys').hidden = D.rows.length === 0 && D.notes.length === 0;
}
$('q').oninput = applyFilter; $('status').onchange = applyFilter;
$('more').onclick = () => { shown += 500; drawList(); };
window.onhashchange = () => { const m = /^#run-(\\d+)$/.exec(location.hash); if (m) drawRun(Number(m[1])); };
$('generated').textContent = 'generated ' + when(data.generatedAt) + ', ' + data.runs.length + ' runs';
drawList(); drawDeploys();
if (/^#run-\\d+$/.test(location.hash)) window.onhashchange(); else if (data.runs.length) drawRun(data.runs[0][F.id]);
`;

export function renderReport(data: ReportData, title = 'Verdandi runs'): string {
  const statuses = ['ok', 'changed', 'failed', 'unreachable', 'interrupted', 'error', 'crashed'];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style></head>
<body>
<header><h1>${escapeHtml(title)}</h1><span id="generated"></span><a id="to-deploys" href="#deploys-box" hidden>deploys per site</a></header>
<main>
<section id="list">
<div id="filters"><input id="q" placeholder="filter: host, env, command, user, id" aria-label="filter">
<select id="status" aria-label="status"><option value="">any status</option>${statuses.map((s) => `<option>${s}</option>`).join('')}</select>
<span id="count"></span></div>
<table><thead><tr><th>id</th><th>started (UTC)</th><th>command</th><th>env</th><th>status</th><th>ok/chg/fail</th><th>took</th><th>who</th></tr></thead>
<tbody id="runs"></tbody></table>
<button id="more" class="more" hidden>more</button>
</section>
<section id="detail"></section>
</main>
<section id="deploys-box" hidden><h3>Deploys per site</h3>
<div id="deploy-notes"></div>
<table><thead><tr><th>host</th><th>release</th><th>commit</th><th>who</th><th>when (UTC)</th><th>outcome</th><th>recorded</th><th>run</th></tr></thead>
<tbody id="deploys"></tbody></table></section>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
