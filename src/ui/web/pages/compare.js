// #/compare/:model/:v1,:v2 — versions overlaid, with their final figures and config differences.
import { el, fmt, href } from '../util.js';
import { get, enc } from '../http.js';
import { curves } from '../curves.js';
import { colorOf } from '../chart.js';

// "name@digest" (or a bare digest) with the digest cut to 12 characters.
const short = (d) => {
  if (typeof d !== 'string') return String(d ?? '–');
  const at = d.lastIndexOf('@');
  const [name, digest] = at >= 0 ? [d.slice(0, at + 1), d.slice(at + 1)] : ['', d];
  return name + (digest.length > 16 ? digest.slice(0, 12) + '…' : digest);
};
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? (Math.abs(v) >= 100 ? fmt.num(v, 1) : fmt.num(v, 4)) : '–');
// Better is up for most metrics and down for a loss.
const deltaClass = (f) => {
  if (typeof f.delta !== 'number' || f.delta === 0) return 'same';
  const better = /loss/.test(f.metric) ? f.delta < 0 : f.delta > 0;
  return better ? 'up' : 'down';
};
// The metrics people compare first, then the rest by name.
const FIRST = ['test_acc', 'test_loss', 'train_acc', 'train_loss', 'steady_images_per_second', 'train_seconds'];
const sortFinals = (fs) => [...fs].sort((x, y) => {
  const i = FIRST.indexOf(x.metric), j = FIRST.indexOf(y.metric);
  return (i < 0 ? 99 : i) - (j < 0 ? 99 : j) || String(x.metric).localeCompare(String(y.metric));
});
const cellText = (v) => (v === undefined ? '—' : v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v));

// config_diff is rendered generically: key → one value per version.
// Accepted shapes: {key: [v1, v2]}, {key: {ref: value}}, {key: {a, b}}, [{key, values|a/b|...}].
function diffRows(diff, versions) {
  const rows = [];
  const pick = (vals) => {
    if (Array.isArray(vals)) return vals;
    if (vals && typeof vals === 'object') {
      const byVersion = versions.map((v) => vals[v]);
      if (byVersion.some((x) => x !== undefined)) return byVersion;
      if ('a' in vals || 'b' in vals) return [vals.a, vals.b];
      if ('from' in vals || 'to' in vals) return [vals.from, vals.to];
      if ('left' in vals || 'right' in vals) return [vals.left, vals.right];
      if ('values' in vals) return pick(vals.values);
      return Object.values(vals);
    }
    return [vals];
  };
  if (Array.isArray(diff)) {
    for (const d of diff) {
      if (d && typeof d === 'object') {
        const { key, path, name, ...rest } = d;
        rows.push([key ?? path ?? name ?? '?', pick(Object.keys(rest).length === 1 ? Object.values(rest)[0] : rest)]);
      } else rows.push([String(d), []]);
    }
  } else if (diff && typeof diff === 'object') {
    for (const [k, vals] of Object.entries(diff)) rows.push([k, pick(vals)]);
  }
  return rows;
}

export async function render(main, [model, refsText]) {
  const refs = refsText.split(',').map((r) => r.trim()).filter(Boolean);
  const data = await get(`/ui/api/models/${enc(model)}/compare?refs=${refs.map(enc).join(',')}`);
  const versions = (data.versions || []);
  const names = versions.map((v) => v.version);
  // `registry::diff` (as `ddpipe models diff --json`): {a, b, config: [{key, a, b}], dataset:
  // {a, b, same}, final: [{metric, a, b, delta}], …}; any other shape is shown generically.
  const cd = data.config_diff;
  const registryDiff = cd && !Array.isArray(cd) && typeof cd === 'object' && Array.isArray(cd.config);
  const rows = diffRows(registryDiff ? cd.config : cd, names);
  const dataset = registryDiff && cd.dataset && typeof cd.dataset === 'object' ? cd.dataset : null;
  const finals = registryDiff && Array.isArray(cd.final) ? cd.final : [];
  const fin = (v) => v.final || (v.epochs || []).at(-1) || {};
  main.replaceChildren(
    el('div', { class: 'head' }, el('div', {},
      el('p', { class: 'eyebrow' }, el('a', { href: '#/models' }, 'Models'), ' / ', el('a', { href: href('models', model) }, model)),
      el('h1', {}, 'Compare')),
    el('p', { class: 'sub' }, `${versions.length} versions overlaid`)),
    el('div', { class: 'cards' }, ...versions.map((v, i) => el('section', { class: 'card', style: `--c:${colorOf(i)}` },
      el('a', { class: 'ver', href: href('models', model, v.version) }, v.version),
      refs[i] && refs[i] !== v.version ? el('span', { class: 'tag' }, refs[i]) : null,
      el('dl', {},
        el('dt', {}, 'test accuracy'), el('dd', {}, fmt.pct(fin(v).test_acc)),
        el('dt', {}, 'test loss'), el('dd', {}, fmt.num(fin(v).test_loss, 4)),
        el('dt', {}, 'epochs'), el('dd', {}, String((v.epochs || []).length)))))),
    el('section', { class: 'panel', id: 'curves' }, el('h2', {}, 'Training curves'),
      el('p', { class: 'lead' }, 'One colour per version; train solid, test dashed.'),
      curves(versions.map((v) => ({ label: v.version, epochs: v.epochs, steps: v.steps })))),
    el('section', { class: 'panel', id: 'config-diff' }, el('h2', {}, 'Configuration differences'),
      rows.length ? el('div', { class: 'scroll' }, el('table', { class: 'diff' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'key'),
          ...names.map((n, i) => el('th', { scope: 'col', class: 'vcol', style: `--c:${colorOf(i)}` }, n)))),
        el('tbody', {}, ...rows.map(([k, vals]) => el('tr', { 'data-key': k }, el('th', { scope: 'row', class: 'mono' }, k),
          ...names.map((_, i) => el('td', { class: 'mono diff' }, cellText(vals[i]))))))))
        : el('p', { class: 'muted' }, 'The configurations are the same.'),
      registryDiff && versions.length > 2
        ? el('p', { class: 'muted small' }, `Differences between the first two: ${names[0]} and ${names[1]}.`) : null,
      dataset ? el('p', { class: `notice ${dataset.same ? 'good' : 'bad'}`, 'data-dataset-same': String(!!dataset.same) },
        dataset.same ? 'Same dataset (digest ' : 'Different datasets: the metrics are not comparable (digests ',
        el('span', { class: 'mono' }, dataset.same ? short(dataset.a) : `${short(dataset.a)} vs ${short(dataset.b)}`), ').') : null,
      finals.length ? [el('h3', {}, 'Final metrics'), el('div', { class: 'scroll' }, el('table', { class: 'finals' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'metric'),
          el('th', { scope: 'col', class: 'num' }, names[0]), el('th', { scope: 'col', class: 'num' }, names[1]),
          el('th', { scope: 'col', class: 'num' }, 'delta'))),
        el('tbody', {}, ...sortFinals(finals).map((f) => el('tr', {}, el('th', { scope: 'row', class: 'mono' }, f.metric),
          el('td', { class: 'num' }, num(f.a)), el('td', { class: 'num' }, num(f.b)),
          el('td', { class: `num ${deltaClass(f)}` }, typeof f.delta === 'number' ? (f.delta > 0 ? '+' : '') + num(f.delta) : '–'))))))] : null));
  return null;
}
