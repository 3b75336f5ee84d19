// A small hand-written SVG line chart, in the visual language of the HTML report
// (src/report/chart.cpp): nice ticks, light grid, Okabe–Ito colours, dashed = test.
// Every curve is a <polyline data-series="<chart>/<metric>/<version>" data-points="N">
// (a single point is a <circle> with the same hooks), and every chart carries a text
// alternative: a <table> of the same numbers inside a <details>.
import { el, fmt } from './util.js';

const SVG = 'http://www.w3.org/2000/svg';
const L = 58, R = 16, T = 14, B = 44;

// Okabe & Ito (2008), the report's order; yellow darkened to be seen on white.
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#000000', '#B8A000'];
export const colorOf = (i) => PALETTE[i % PALETTE.length];

function svg(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

function niceStep(raw, integer) {
  if (!(raw > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  let s = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  if (integer) s = Math.max(1, Math.round(s));
  return s;
}

export function niceTicks(lo, hi, target, widen, integer) {
  if (!(hi > lo)) {
    const pad = integer ? 0.5 : lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad; hi += pad;
  }
  const step = niceStep((hi - lo) / Math.max(1, target - 1), integer);
  const first = widen ? Math.floor(lo / step + 1e-9) : Math.ceil(lo / step - 1e-9);
  const last = widen ? Math.ceil(hi / step - 1e-9) : Math.floor(hi / step + 1e-9);
  const values = [];
  for (let k = first; k <= last; ++k) values.push(k * step);
  return { step, values, lo: widen ? first * step : lo, hi: widen ? last * step : hi };
}

function decimalsFor(step) {
  if (step >= 1) return 0;
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)));
}

function tickLabel(v, step, format) {
  if (format === 'percent') return (v * 100).toFixed(decimalsFor(step * 100)) + '%';
  if (format === 'integer') return Math.round(v).toLocaleString('en-US');
  if (step >= 1000) return (v / 1000).toFixed(decimalsFor(step / 1000)) + 'k';
  return v.toFixed(decimalsFor(step));
}

// At most `max` points, evenly picked, first and last kept (as the report does).
export function downsample(points, max) {
  if (points.length <= max || max < 2) return points;
  const out = [];
  const stride = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; ++i) out.push(points[Math.round(i * stride)]);
  return out;
}

// spec: {id, title, xTitle, yTitle, xFormat:'integer'|'number', yFormat:'number'|'percent'|'integer',
//        series:[{id, label, color, dashed, markers, points:[[x,y],...]}], empty: "text when no data"}
export function lineChart(spec) {
  const W = spec.width || 560, H = spec.height || 300;
  const series = spec.series.map((s) => ({
    ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  }));
  const fig = el('figure', { class: 'chart', 'data-chart': spec.id });
  const key = el('span', { class: 'key' });
  for (const s of series) {
    if (!s.points.length) continue;
    key.append(el('span', { class: 'chip' },
      el('i', { class: 'swatch' + (s.dashed ? ' hollow' : ''), style: `--c:${s.color}` }), s.label));
  }
  fig.append(el('figcaption', {}, el('b', {}, spec.title), key));
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    fig.append(el('div', { class: 'nodata' }, spec.empty || 'No data yet.'));
    return fig;
  }
  let xlo = Math.min(...all.map((p) => p[0])), xhi = Math.max(...all.map((p) => p[0]));
  let ylo = Math.min(...all.map((p) => p[1])), yhi = Math.max(...all.map((p) => p[1]));
  const xt = niceTicks(xlo, xhi, 8, false, spec.xFormat === 'integer');
  const yt = niceTicks(ylo, yhi, 6, true, spec.yFormat === 'integer');
  if (spec.yFormat === 'percent') {
    yt.lo = Math.max(yt.lo, 0); yt.hi = Math.min(yt.hi, 1);
    yt.values = yt.values.filter((t) => t >= yt.lo - 1e-9 && t <= yt.hi + 1e-9);
  }
  const x0 = L, x1 = W - R, y0 = T, y1 = H - B;
  const px = (x) => x0 + (xt.hi > xt.lo ? (x - xt.lo) / (xt.hi - xt.lo) : 0.5) * (x1 - x0);
  const py = (y) => y1 - (yt.hi > yt.lo ? (y - yt.lo) / (yt.hi - yt.lo) : 0.5) * (y1 - y0);

  const root = svg('svg', { class: 'plot', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': spec.title });
  const grid = svg('g', { class: 'grid' });
  for (const t of yt.values) grid.append(svg('line', { x1: x0, x2: x1, y1: py(t).toFixed(1), y2: py(t).toFixed(1) }));
  for (const t of xt.values) grid.append(svg('line', { y1: y0, y2: y1, x1: px(t).toFixed(1), x2: px(t).toFixed(1) }));
  root.append(grid);
  const ticks = svg('g', { class: 'tick' });
  for (const t of yt.values) ticks.append(svg('text', { x: x0 - 8, y: (py(t) + 4).toFixed(1), 'text-anchor': 'end' }, tickLabel(t, yt.step, spec.yFormat)));
  for (const t of xt.values) ticks.append(svg('text', { x: px(t).toFixed(1), y: y1 + 18, 'text-anchor': 'middle' }, tickLabel(t, xt.step, spec.xFormat)));
  root.append(ticks);
  root.append(svg('path', { class: 'axis', d: `M${x0} ${y0}V${y1}H${x1}` }));
  root.append(svg('text', { class: 'axis-title', x: (x0 + x1) / 2, y: H - 6, 'text-anchor': 'middle' }, spec.xTitle));
  root.append(svg('text', { class: 'axis-title', transform: `translate(14 ${(y0 + y1) / 2}) rotate(-90)`, 'text-anchor': 'middle' }, spec.yTitle));

  for (const s of [...series].reverse()) {
    if (!s.points.length) continue;
    const hooks = { 'data-series': s.id, 'data-points': s.points.length };
    const fill = s.dashed ? '#fff' : s.color;
    if (s.points.length === 1) {
      const c = svg('circle', { class: 'dot', ...hooks, cx: px(s.points[0][0]).toFixed(1), cy: py(s.points[0][1]).toFixed(1), r: 5, fill, stroke: s.color });
      c.append(svg('title', {}, s.label));
      root.append(c);
      continue;
    }
    const drawn = downsample(s.points, 600);
    const line = svg('polyline', {
      class: 'line', ...hooks, fill: 'none', stroke: s.color,
      'stroke-dasharray': s.dashed ? '7 4' : undefined,
      points: drawn.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' '),
    });
    line.append(svg('title', {}, s.label));
    root.append(line);
    if (s.markers !== false && s.points.length <= 40) {
      const g = svg('g', { class: 'marks', fill, stroke: s.color });
      for (const [x, y] of s.points) g.append(svg('circle', { cx: px(x).toFixed(1), cy: py(y).toFixed(1), r: 2.6 }));
      root.append(g);
    }
  }
  fig.append(root);
  fig.append(dataTable(spec, series));
  return fig;
}

// The text alternative: one row per x, one column per series.
function dataTable(spec, series) {
  const shown = series.filter((s) => s.points.length);
  const xs = [...new Set(shown.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const maps = shown.map((s) => new Map(s.points.map((p) => [p[0], p[1]])));
  const f = (v) => (v === undefined ? '' : spec.yFormat === 'percent' ? fmt.pct(v, 2) : fmt.num(v, 4));
  const rows = xs.slice(0, 2000).map((x) =>
    el('tr', {}, el('th', { scope: 'row' }, fmt.num(x, spec.xFormat === 'integer' ? 0 : 2)),
      ...maps.map((m) => el('td', { class: 'num' }, f(m.get(x))))));
  return el('details', { class: 'alt' },
    el('summary', {}, `Table of “${spec.title}”`),
    el('div', { class: 'scroll' }, el('table', {},
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, spec.xTitle), ...shown.map((s) => el('th', { scope: 'col' }, s.label)))),
      el('tbody', {}, ...rows))));
}
