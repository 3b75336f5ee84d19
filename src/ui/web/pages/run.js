// #/runs/:model/:run — one run: its figures, error, attempts and curves; polled while it runs.
import { el, fmt, href, statusBadge, secondsBetween, isNum } from '../util.js';
import { get, enc } from '../http.js';
import { curves } from '../curves.js';

const POLL_MS = 2000;
const LIVE = new Set(['running', 'restarting']);

function kpis(r) {
  const p = r.progress || {};
  const m = r.latest_metrics || {};
  const kpi = (label, value) => el('div', { class: 'kpi' }, el('span', { class: 'big' }, value), el('span', { class: 'lbl' }, label));
  return el('div', { class: 'kpis', 'data-epoch': p.epoch ?? '', 'data-step': p.step ?? '', 'data-status': r.status || '' },
    kpi('epoch', `${p.epoch ?? '–'} / ${p.epochs ?? '–'}`),
    kpi('step', `${p.step ?? '–'} / ${p.steps ?? '–'}`),
    kpi('test accuracy', fmt.pct(m.test_acc)),
    kpi('images/s', fmt.int(p.images_per_second)),
    kpi(LIVE.has(r.status) ? 'ETA (job)' : 'duration',
      LIVE.has(r.status) ? fmt.dur(p.eta_job_s) : fmt.dur(secondsBetween(r.started, r.finished || r.heartbeat))));
}

function details(r) {
  const row = (k, v) => [el('dt', {}, k), el('dd', {}, v)];
  const hs = Array.isArray(r.hosts) ? r.hosts : [];
  return el('dl', { class: 'facts' },
    row('status', statusBadge(r.status)),
    r.stored_status && r.stored_status !== r.status ? row('stored status', r.stored_status) : null,
    row('world size', String(r.world_size ?? '–')),
    row('hosts', hs.length ? hs.map((h, i) => `${i}: ${h}`).join(', ') : '–'),
    row('started', fmt.time(r.started)),
    row('heartbeat', `${fmt.time(r.heartbeat)}${isNum(r.heartbeat_age_s) ? ` (${fmt.dur(r.heartbeat_age_s)} ago)` : ''}`),
    row('finished', fmt.time(r.finished)),
    row('attempt', String((r.attempt ?? 0) + 1)),
    row('version', r.version ? el('a', { href: href('models', r.name, r.version), class: 'mono' }, r.version) : '–'));
}

function errorBlock(r) {
  const parts = [];
  if (r.error) {
    parts.push(el('div', { class: 'notice bad', role: 'alert' },
      el('b', {}, 'Failed'),
      isNum(r.error.rank) ? ` on rank ${r.error.rank}` : '',
      isNum(r.error.exit_code) ? ` (exit code ${r.error.exit_code})` : '',
      el('pre', { class: 'err' }, r.error.message || '')));
  }
  const atts = Array.isArray(r.attempts) ? r.attempts : [];
  if (atts.length) {
    parts.push(el('h3', {}, 'Failed attempts'), el('div', { class: 'scroll' }, el('table', {},
      el('thead', {}, el('tr', {}, ...['attempt', 'exit code', 'failed rank', 'reason'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...atts.map((a) => el('tr', {},
        el('td', { class: 'num' }, String((a.attempt ?? 0) + 1)), el('td', { class: 'num' }, String(a.exit_code ?? '–')),
        el('td', { class: 'num' }, String(a.failed_rank ?? '–')), el('td', {}, a.reason || '')))))));
  }
  return parts;
}

export async function render(main, [model, runId], ctx) {
  const url = `/ui/api/runs/${enc(model)}/${enc(runId)}`;
  let r = await get(url);
  const body = el('div');
  const draw = () => {
    body.replaceChildren(
      el('div', { class: 'head' }, el('div', {},
        el('p', { class: 'eyebrow' }, el('a', { href: '#/runs' }, 'Runs'), ' / ', el('a', { href: href('models', model) }, model)),
        el('h1', { class: 'mono-title' }, runId)),
      el('p', { class: 'sub' }, statusBadge(r.status), LIVE.has(r.status) ? ' live, refreshed every 2 s' : '')),
      el('section', { class: 'panel' }, kpis(r), details(r), ...errorBlock(r)),
      el('section', { class: 'panel', id: 'curves' }, el('h2', {}, 'Training curves'),
        el('p', { class: 'lead' }, 'Per-epoch train (solid) and test (dashed, hollow dots) metrics; loss per progress event.'),
        curves([{ label: runId, epochs: r.epochs, steps: r.steps }])));
  };
  draw();
  main.replaceChildren(body);
  if (!LIVE.has(r.status)) return null;
  let stopped = false, timer = null;
  const tick = async () => {
    try {
      const next = await get(url);
      if (stopped || !ctx.isCurrent()) return;
      const changed = JSON.stringify(next) !== JSON.stringify(r);
      r = next;
      if (!changed) { timer = setTimeout(tick, POLL_MS); return; }
      const focusedHref = document.activeElement?.closest?.('#main') ? document.activeElement.getAttribute('href') : null;
      // Keep open <details> (chart tables) open across redraws.
      const open = [...body.querySelectorAll('details[open]')].map((d) => d.closest('[data-chart]')?.dataset.chart);
      draw();
      for (const c of open) body.querySelector(`[data-chart="${c}"] details`)?.setAttribute('open', '');
      if (focusedHref) body.querySelector(`a[href="${CSS.escape(focusedHref)}"]`)?.focus({ preventScroll: true });
    } catch { /* keep the last figures; retry */ }
    if (!stopped && LIVE.has(r.status)) timer = setTimeout(tick, POLL_MS);
  };
  timer = setTimeout(tick, POLL_MS);
  return () => { stopped = true; clearTimeout(timer); };
}
