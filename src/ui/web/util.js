// DOM and formatting helpers shared by the pages.

// el('a', {href, class, onclick}, child, "text", [children]) — null/false children are skipped.
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') n.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(n.dataset, v);
    else if (v === true) n.setAttribute(k, '');
    else n.setAttribute(k, String(v));
  }
  append(n, children);
  return n;
}

function append(n, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(n, c);
    else n.append(c instanceof Node ? c : String(c));
  }
}

const DASH = '\u2013';
const finite = (v) => typeof v === 'number' && Number.isFinite(v);

export const fmt = {
  num(v, d = 2) {
    if (!finite(v)) return DASH;
    return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  },
  int(v) { return finite(v) ? Math.round(v).toLocaleString('en-US') : DASH; },
  pct(v, d = 2) { return finite(v) ? (v * 100).toFixed(d) + '%' : DASH; },
  rate(v) { return finite(v) ? Math.round(v).toLocaleString('en-US') + ' img/s' : DASH; },
  dur(s) {
    if (!finite(s) || s < 0) return DASH;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    const t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
    const two = (x) => String(x).padStart(2, '0');
    return h ? `${h} h ${two(m)} min` : `${m} min ${two(sec)} s`;
  },
  bytes(n) {
    if (!finite(n)) return DASH;
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; ++i; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  },
  time(iso) {
    if (!iso) return DASH;
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
  },
};

export const isNum = finite;

// Seconds between two ISO times (or until now when `to` is empty).
export function secondsBetween(from, to) {
  const a = Date.parse(from);
  if (isNaN(a)) return NaN;
  const b = to ? Date.parse(to) : Date.now();
  return isNaN(b) ? NaN : (b - a) / 1000;
}

// The link of a route (hash), each part URI-encoded.
export function href(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(p)).join('/');
}

export function statusBadge(status) {
  const s = String(status || 'unknown');
  return el('span', { class: `badge st-${s.replace(/[^a-z]/g, '')}` }, s);
}

// A card: <section class="card"> with a heading.
export function card(title, ...body) {
  return el('section', { class: 'panel' }, title ? el('h2', {}, title) : null, ...body);
}
