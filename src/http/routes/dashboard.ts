import type { FastifyPluginAsync } from 'fastify';
import { STATUS_COUNTERS } from '../../protocol/states.js';

/**
 * [SPEC 5] The dashboard at `/`: one self-contained page (no build step, no external assets) that lists jobs
 * with their progress from ListJobs and DescribeJob, and shows a live feed read from GET /events. It reads
 * the stream with fetch rather than EventSource so that it can send the operator key as a Bearer header; the
 * key is kept in the browser's localStorage and never in the page.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fleetjobs</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2733; background: #f5f7fa; }
  header { display: flex; gap: 1em; align-items: center; padding: .6em 1em; background: #1d2733; color: #fff; }
  header h1 { font-size: 1.1em; margin: 0; }
  header .grow { flex: 1; }
  header input { width: 22em; }
  main { display: grid; grid-template-columns: 2fr 1fr; gap: 1em; padding: 1em; }
  section { background: #fff; border: 1px solid #dde3ea; border-radius: 6px; padding: .8em; min-width: 0; }
  h2 { font-size: 1em; margin: 0 0 .6em; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: .3em .4em; border-bottom: 1px solid #eef1f4; white-space: nowrap; }
  td.progress { width: 40%; }
  .bar { display: flex; height: .9em; background: #eef1f4; border-radius: 3px; overflow: hidden; }
  .bar span { display: block; height: 100%; }
  .SUCCEEDED { background: #2e9d5b; } .FAILED, .TIMED_OUT, .REJECTED { background: #d64545; }
  .CANCELED, .REMOVED { background: #9aa5b1; } .IN_PROGRESS { background: #3d7fd9; } .QUEUED { background: #e3e8ee; }
  .status { font-weight: 600; } .muted { color: #6b7785; }
  #feed { list-style: none; margin: 0; padding: 0; max-height: 70vh; overflow: auto; font-family: ui-monospace, monospace; font-size: 12px; }
  #feed li { padding: .2em 0; border-bottom: 1px solid #eef1f4; word-break: break-all; }
  #error { color: #d64545; }
</style>
</head>
<body>
<header>
  <h1>fleetjobs</h1>
  <span id="conn" class="muted">connecting…</span>
  <span id="error"></span>
  <span class="grow"></span>
  <label>operator key <input id="token" type="password" autocomplete="off" placeholder="Bearer token"></label>
</header>
<main>
  <section>
    <h2>Jobs</h2>
    <table>
      <thead><tr><th>job</th><th>status</th><th>type</th><th>progress</th><th>done</th><th>created</th></tr></thead>
      <tbody id="jobs"></tbody>
    </table>
  </section>
  <section>
    <h2>Live events</h2>
    <ul id="feed"></ul>
  </section>
</main>
<script>
'use strict';
const ORDER = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'CANCELED', 'REMOVED', 'IN_PROGRESS', 'QUEUED'];
const FIELD = ${JSON.stringify(STATUS_COUNTERS)};
const tokenInput = document.getElementById('token');
tokenInput.value = localStorage.getItem('fleetjobs.token') || '';
tokenInput.addEventListener('change', () => {
  localStorage.setItem('fleetjobs.token', tokenInput.value);
  refreshAll();
  connectEvents();
});
function headers() {
  const t = tokenInput.value.trim();
  return t ? { authorization: 'Bearer ' + t } : {};
}
function showError(message) { document.getElementById('error').textContent = message || ''; }
async function api(path) {
  const res = await fetch(path, { headers: headers() });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body && body.message) || res.status + ' ' + res.statusText);
  return body;
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function when(seconds) { return seconds ? new Date(seconds * 1000).toLocaleString() : ''; }

const rows = new Map();
function render(job) {
  let tr = rows.get(job.jobId);
  if (!tr) {
    tr = document.createElement('tr');
    rows.set(job.jobId, tr);
    document.getElementById('jobs').prepend(tr);
  }
  const d = job.jobProcessDetails || {};
  const counts = ORDER.map((s) => [s, d[FIELD[s]] || 0]);
  const total = counts.reduce((a, [, n]) => a + n, 0);
  const finished = counts.slice(0, 6).reduce((a, [, n]) => a + n, 0);
  const bar = el('div', undefined, 'bar');
  for (const [s, n] of counts) {
    if (!n) continue;
    const seg = el('span', undefined, s);
    seg.style.width = (100 * n / total) + '%';
    seg.title = s + ': ' + n;
    bar.append(seg);
  }
  const progress = el('td', undefined, 'progress');
  progress.append(bar);
  tr.replaceChildren(
    el('td', job.jobId), el('td', job.status, 'status'), el('td', job.targetSelection || ''), progress,
    el('td', total ? finished + '/' + total : '0'), el('td', when(job.createdAt), 'muted'));
}
async function refreshJob(jobId) {
  try {
    const { job } = await api('/jobs/' + encodeURIComponent(jobId));
    render(job);
  } catch (err) {
    showError(err.message);
  }
}
async function refreshAll() {
  try {
    const { jobs } = await api('/jobs?maxResults=50');
    showError('');
    await Promise.all((jobs || []).reverse().map((j) => refreshJob(j.jobId)));
  } catch (err) {
    showError(err.message);
  }
}

const feed = document.getElementById('feed');
function addEvent(type, data) {
  const li = el('li', new Date().toLocaleTimeString() + ' ' + type + ' ' + data);
  feed.prepend(li);
  while (feed.children.length > 200) feed.lastChild.remove();
  try {
    const parsed = JSON.parse(data);
    if (parsed && typeof parsed.jobId === 'string') refreshJob(parsed.jobId);
  } catch {}
}
let stream;
let lastEventId = '';
async function connectEvents() {
  if (stream) stream.abort();
  stream = new AbortController();
  const conn = document.getElementById('conn');
  try {
    const h = Object.assign({ accept: 'text/event-stream' }, headers());
    if (lastEventId) h['last-event-id'] = lastEventId;
    const res = await fetch('/events', { headers: h, signal: stream.signal });
    if (!res.ok || !res.body) throw new Error('/events answered ' + res.status);
    conn.textContent = 'live';
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let cut;
      while ((cut = buf.indexOf('\\n\\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let type = 'message', data = [];
        for (const line of block.split('\\n')) {
          if (line.startsWith('event:')) type = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          else if (line.startsWith('id:')) lastEventId = line.slice(3).trim();
        }
        if (data.length) addEvent(type, data.join('\\n'));
      }
    }
    throw new Error('the event stream ended');
  } catch (err) {
    if (err.name === 'AbortError') return;
    conn.textContent = 'polling (' + err.message + ')';
    setTimeout(() => { refreshAll(); connectEvents(); }, 5000);
  }
}
refreshAll();
connectEvents();
</script>
</body>
</html>
`;

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  app.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header(
        'content-security-policy',
        "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
      )
      .send(DASHBOARD_HTML),
  );
};
