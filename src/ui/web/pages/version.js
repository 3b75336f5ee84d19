// #/models/:model/:version — one version: final figures, curves, confusion matrix, lineage, files.
import { el, fmt, href, isNum } from '../util.js';
import { get, enc, request, token } from '../http.js';
import { curves } from '../curves.js';

const SVG = 'http://www.w3.org/2000/svg';
const s = (tag, attrs = {}, text) => {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
};

// Confusion matrix as an SVG heat map (blue scale, row-normalised), with its table alternative.
export function confusion(ev) {
  const classes = ev.classes || [];
  const m = ev.confusion_matrix || [];
  const n = classes.length;
  if (!n || m.length !== n) return el('div', { class: 'nodata' }, 'No evaluation recorded.');
  const cell = Math.max(22, Math.min(44, Math.floor(440 / n)));
  const left = 96, top = 28, w = left + n * cell + 70, h = top + n * cell + 84;
  const root = s('svg', { class: 'cm', viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': 'Confusion matrix: true class by row, predicted class by column' });
  root.append(s('text', { class: 'axis-title', x: left + (n * cell) / 2, y: 14, 'text-anchor': 'middle' }, 'predicted'));
  for (let i = 0; i < n; ++i) {
    const total = m[i].reduce((a, b) => a + b, 0) || 1;
    root.append(s('text', { x: left - 6, y: top + i * cell + cell / 2 + 4, 'text-anchor': 'end' }, short(classes[i])));
    for (let j = 0; j < n; ++j) {
      const v = m[i][j], f = v / total;
      const light = 97 - 62 * Math.sqrt(f);
      const r = s('rect', { x: left + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1, rx: 2,
        fill: v ? `hsl(205 75% ${light.toFixed(1)}%)` : '#f5f7fa' });
      r.append(s('title', {}, `true ${classes[i]}, predicted ${classes[j]}: ${v}`));
      root.append(r);
      if (v && cell >= 26) root.append(s('text', { class: 'count', x: left + j * cell + cell / 2, y: top + i * cell + cell / 2 + 4, 'text-anchor': 'middle', fill: light < 60 ? '#fff' : '#3e4c59', style: light < 60 ? 'fill:#fff' : '' }, String(v)));
    }
  }
  for (let j = 0; j < n; ++j) {
    const x = left + j * cell + cell / 2, y = top + n * cell + 8;
    root.append(s('text', { x, y, transform: `rotate(45 ${x} ${y})`, 'text-anchor': 'start' }, short(classes[j])));
  }
  const table = el('table', {},
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'true \\ predicted'), ...classes.map((c) => el('th', { scope: 'col' }, c)))),
    el('tbody', {}, ...classes.map((c, i) => el('tr', {}, el('th', { scope: 'row' }, c), ...m[i].map((v) => el('td', { class: 'num' }, String(v)))))));
  return el('figure', { class: 'chart' }, el('figcaption', {}, el('b', {}, 'Confusion matrix'), el('span', { class: 'key' }, 'rows: true class · columns: predicted')),
    root, el('details', { class: 'alt' }, el('summary', {}, 'Table of the confusion matrix'), el('div', { class: 'scroll' }, table)));
}

const short = (c) => (String(c).length > 12 ? String(c).slice(0, 11) + '…' : String(c));

function perClass(ev) {
  const rows = ev.per_class || [];
  if (!rows.length) return null;
  return el('div', { class: 'scroll' }, el('table', {},
    el('thead', {}, el('tr', {}, ...['class', 'precision', 'recall', 'support'].map((h, i) => el('th', { scope: 'col', class: i ? 'num' : null }, h)))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, el('th', { scope: 'row' }, r.class),
      el('td', { class: 'num bar' }, el('i', { style: `width:${((r.precision || 0) * 100).toFixed(1)}%` }), el('span', {}, fmt.pct(r.precision, 1))),
      el('td', { class: 'num bar' }, el('i', { style: `width:${((r.recall || 0) * 100).toFixed(1)}%` }), el('span', {}, fmt.pct(r.recall, 1))),
      el('td', { class: 'num' }, fmt.int(r.support)))))));
}

function lineage(model, v, m) {
  const ds = m.dataset || {}, spec = m.model_spec || {};
  const rows = [
    ['version', el('span', { class: 'mono' }, v.version)],
    ['created', fmt.time(m.created)],
    ['run', m.run_id ? el('a', { class: 'mono', href: href('runs', model, m.run_id) }, m.run_id) : '–'],
    ['source revision', el('span', { class: 'mono' }, m.source_revision || '–')],
    ['dataset', `${ds.name ?? '–'} (train ${fmt.int(ds.train_size)}, test ${fmt.int(ds.test_size)}, ${(ds.classes || []).length || '–'} classes)`],
    ['dataset digest', el('span', { class: 'mono wrap' }, ds.digest || '–')],
    ['model', Object.entries(spec).map(([k, val]) => `${k}: ${typeof val === 'object' ? JSON.stringify(val) : val}`).join(' · ') || '–'],
    ['world size', String(m.world_size ?? '–')],
    ['seed', String(m.seed ?? '–')],
    ['train time', fmt.dur(m.train_seconds)],
  ];
  return el('table', { class: 'lineage' }, el('tbody', {}, ...rows.map(([k, val]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, val)))));
}

// A file link; with a token, the download goes through fetch (a plain link cannot send it).
function fileLink(f) {
  const a = el('a', { href: f.url, download: f.name, class: 'mono' }, f.name);
  a.addEventListener('click', async (e) => {
    if (!token.get()) return;
    e.preventDefault();
    const res = await request(f.url);
    if (!res.ok) { alert(`Download failed: ${res.status}`); return; }
    const url = URL.createObjectURL(await res.blob());
    const tmp = el('a', { href: url, download: f.name });
    document.body.append(tmp); tmp.click(); tmp.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
  return a;
}

export async function render(main, [model, ref]) {
  const [v, models] = await Promise.all([
    get(`/ui/api/models/${enc(model)}/versions/${enc(ref)}`),
    get('/ui/api/models').catch(() => []),
  ]);
  // The version published before this one (the list is newest first), to compare with.
  const list = (models.find((x) => x.name === model)?.versions || []).map((x) => x.version);
  const previous = list[list.indexOf(v.version) + 1];
  const m = v.manifest || {};
  const fin = m.final || (m.epochs || []).at(-1) || {};
  const kpi = (label, value) => el('div', { class: 'kpi' }, el('span', { class: 'big' }, value), el('span', { class: 'lbl' }, label));
  const files = v.files || [];
  main.replaceChildren(
    el('div', { class: 'head' }, el('div', {},
      el('p', { class: 'eyebrow' }, el('a', { href: '#/models' }, 'Models'), ' / ', el('a', { href: href('models', model) }, model)),
      el('h1', { class: 'mono-title' }, v.version)),
    el('p', { class: 'sub' }, ref !== v.version ? ['resolved from ', el('b', {}, ref), ' · '] : null,
      previous && list.indexOf(v.version) >= 0
        ? el('a', { class: 'button-link', href: href('compare', model, `${v.version},${previous}`) }, `Compare with ${previous}`)
        : ['compare it with ', el('a', { href: href('models', model) }, 'another version'), ' from the model page'])),
    el('section', { class: 'panel' }, el('div', { class: 'kpis' },
      kpi('test accuracy', fmt.pct(fin.test_acc)), kpi('test loss', fmt.num(fin.test_loss, 4)),
      kpi('epochs', String((m.epochs || []).length)), kpi('images/s', fmt.int(fin.steady_images_per_second ?? fin.images_per_second)))),
    el('section', { class: 'panel', id: 'curves' }, el('h2', {}, 'Training curves'),
      el('p', { class: 'lead' }, 'Train (solid) and test (dashed, hollow dots) per epoch; loss per progress event.'),
      curves([{ label: v.version, epochs: m.epochs, steps: v.steps }])),
    el('section', { class: 'panel', id: 'evaluation' }, el('h2', {}, 'Evaluation'),
      el('p', { class: 'lead' }, `On ${fmt.int(m.evaluation?.samples ?? fin.test_samples)} test samples.`),
      el('div', { class: 'eval' }, confusion(m.evaluation || {}), perClass(m.evaluation || {}))),
    el('section', { class: 'panel', id: 'lineage' }, el('h2', {}, 'Lineage'), lineage(model, v, m),
      m.config ? el('details', {}, el('summary', {}, 'Configuration'), el('pre', {}, typeof m.config === 'string' ? m.config : JSON.stringify(m.config, null, 2))) : null),
    el('section', { class: 'panel', id: 'files' }, el('h2', {}, 'Files'),
      files.length ? el('ul', { class: 'files' }, ...files.map((f) => el('li', {}, fileLink(f), el('span', { class: 'muted' }, fmt.bytes(f.size)))))
        : el('p', { class: 'muted' }, 'No files listed.')));
  return null;
}
