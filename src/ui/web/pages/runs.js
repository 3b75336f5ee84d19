// #/runs: every run, newest first, polled every 2 s and updated in place.
import { el, fmt, href, statusBadge, secondsBetween, isNum } from '../util.js';
import { get } from '../http.js';

const POLL_MS = 2000;
const COLS = ['Status', 'Model', 'Run', 'Progress', 'Images/s', 'ETA', 'Ranks', 'Hosts', 'Duration'];

const keyOf = (r) => `${r.name}/${r.run_id}`;

function bar(label, value, max) {
  const frac = isNum(value) && isNum(max) && max > 0 ? Math.min(1, Math.max(0, value / max)) : 0;
  return el('div', { class: 'prog' },
    el('span', { class: 'prog-label' }, label),
    el('span', { class: 'prog-track', role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0,
      'aria-valuemax': isNum(max) ? max : 0, 'aria-valuenow': isNum(value) ? value : 0 },
    el('i', { style: `width:${(frac * 100).toFixed(1)}%` })));
}

// Epochs done, counting the current one's share of steps.
function epochDone(p) {
  if (!isNum(p.epoch)) return 0;
  if (isNum(p.step) && isNum(p.steps) && p.steps > 0) return p.epoch - 1 + p.step / p.steps;
  return p.epoch;
}

function progressCell(r) {
  const p = r.progress || {};
  if (!isNum(p.epochs) && !isNum(p.steps)) return el('span', { class: 'muted' }, '–');
  return el('div', { class: 'progs' },
    bar(`epoch ${p.epoch ?? '–'}/${p.epochs ?? '–'}`, epochDone(p), p.epochs),
    bar(`step ${p.step ?? '–'}/${p.steps ?? '–'}`, p.step, p.steps));
}

function duration(r) {
  const s = secondsBetween(r.started, r.finished || (r.status === 'running' || r.status === 'restarting' ? '' : r.heartbeat));
  return fmt.dur(s);
}

function eta(r) {
  if (r.status !== 'running') return '–';
  const p = r.progress || {};
  return fmt.dur(p.eta_job_s);
}

function hosts(r) {
  const hs = Array.isArray(r.hosts) ? r.hosts : [];
  const uniq = [...new Set(hs)];
  if (!uniq.length) return '–';
  const txt = uniq.length <= 2 ? uniq.join(', ') : `${uniq.slice(0, 2).join(', ')} +${uniq.length - 2}`;
  return el('span', { title: hs.map((h, i) => `rank ${i}: ${h}`).join('\n') }, txt);
}

function cells(r) {
  const runLink = el('a', { href: href('runs', r.name, r.run_id), class: 'mono' }, r.run_id);
  const status = el('div', { class: 'stack' }, statusBadge(r.status),
    r.attempt > 0 ? el('span', { class: 'muted small' }, `attempt ${r.attempt + 1}`) : null,
    r.status === 'running' && isNum(r.heartbeat_age_s) && r.heartbeat_age_s > 30
      ? el('span', { class: 'muted small' }, `beat ${fmt.dur(r.heartbeat_age_s)} ago`) : null);
  const model = el('div', { class: 'stack' }, el('a', { href: href('models', r.name) }, r.name),
    r.version ? el('a', { class: 'small mono', href: href('models', r.name, r.version) }, r.version) : null);
  return [
    status, model, runLink, progressCell(r),
    el('span', {}, fmt.rate(r.progress?.images_per_second)),
    el('span', {}, eta(r)),
    el('span', {}, isNum(r.world_size) ? String(r.world_size) : '–'),
    hosts(r),
    el('span', {}, duration(r)),
  ];
}

const NUMERIC = new Set([4, 5, 6, 8]);

function fillRow(tr, r) {
  tr.dataset.run = keyOf(r);
  tr.dataset.status = r.status || '';
  tr.dataset.epoch = String(r.progress?.epoch ?? '');
  tr.dataset.step = String(r.progress?.step ?? '');
  const cs = cells(r);
  // Update cell contents in place: the row (and its focus, if a link in it has focus) stays.
  while (tr.children.length < cs.length) tr.append(el('td'));
  cs.forEach((c, i) => {
    const td = tr.children[i];
    td.dataset.label = COLS[i];
    if (NUMERIC.has(i)) td.className = 'num';
    const sig = c.outerHTML;
    if (td.dataset.sig !== sig) {
      const focused = td.contains(document.activeElement);
      td.replaceChildren(c);
      td.dataset.sig = sig;
      if (focused) td.querySelector('a,button')?.focus();
    }
  });
}

export async function render(main, _params, ctx) {
  const tbody = el('tbody');
  const count = el('span', { class: 'muted' });
  const updated = el('span', { class: 'muted small', 'aria-live': 'off' });
  const empty = el('p', { class: 'empty', hidden: true }, 'No runs in the store yet. Start one with ',
    el('code', {}, 'ddpipe run'), '.');
  const errorBox = el('p', { class: 'notice bad', role: 'alert', hidden: true });
  let tableBox = null;
  main.replaceChildren(
    el('div', { class: 'head' }, el('div', {}, el('p', { class: 'eyebrow' }, 'Training'), el('h1', {}, 'Runs')),
      el('p', { class: 'sub' }, count, ' · live, refreshed every 2 s · ', updated)),
    errorBox,
    el('section', { class: 'panel flush' },
      tableBox = el('div', { class: 'scroll' }, el('table', { class: 'runs responsive' },
        el('caption', { class: 'sr-only' }, 'Training runs, newest first'),
        el('thead', {}, el('tr', {}, ...COLS.map((c, i) => el('th', { scope: 'col', class: NUMERIC.has(i) ? 'num' : null }, c)))),
        tbody)),
      empty));

  const rows = new Map();
  const update = (list) => {
    const seen = new Set();
    let prev = null;
    for (const r of list) {
      const k = keyOf(r);
      seen.add(k);
      let tr = rows.get(k);
      if (!tr) { tr = el('tr'); rows.set(k, tr); }
      fillRow(tr, r);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const [k, tr] of rows) if (!seen.has(k)) { tr.remove(); rows.delete(k); }
    const running = list.filter((r) => r.status === 'running').length;
    count.textContent = `${list.length} run${list.length === 1 ? '' : 's'}${running ? `, ${running} running` : ''}`;
    empty.hidden = list.length > 0;
    tableBox.hidden = list.length === 0;
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  };

  update(await get('/ui/api/runs'));
  let timer = null, stopped = false;
  const tick = async () => {
    try {
      const list = await get('/ui/api/runs');
      if (stopped || !ctx.isCurrent()) return;
      update(list);
      errorBox.hidden = true;
    } catch (e) {
      if (stopped) return;
      errorBox.textContent = `Could not refresh: ${e.message}`;
      errorBox.hidden = false;
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  timer = setTimeout(tick, POLL_MS);
  return () => { stopped = true; clearTimeout(timer); };
}
