// The dashboard: a single-page app with hash routes. Each page is a module whose `render(main,
// params)` fills <main> and may return a cleanup function (its timers), called on navigation.
import { el } from './util.js';
import { ApiError } from './http.js';
import * as runs from './pages/runs.js';
import * as run from './pages/run.js';
import * as models from './pages/models.js';
import * as version from './pages/version.js';
import * as compare from './pages/compare.js';
import * as tryit from './pages/try.js';

const routes = [
  [/^\/?$/, () => ['runs', runs, []]],
  [/^\/runs\/?$/, () => ['runs', runs, []]],
  [/^\/runs\/([^/]+)\/([^/]+)\/?$/, (m) => ['runs', run, [m[1], m[2]]]],
  [/^\/models\/?$/, () => ['models', models, []]],
  [/^\/models\/([^/]+)\/?$/, (m) => ['models', models, [m[1]]]],
  [/^\/models\/([^/]+)\/([^/]+)\/?$/, (m) => ['models', version, [m[1], m[2]]]],
  [/^\/compare\/([^/]+)\/([^/]+)\/?$/, (m) => ['models', compare, [m[1], m[2]]]],
  [/^\/try\/?$/, () => ['try', tryit, []]],
];

let cleanup = null;
let generation = 0;
let firstRoute = true;

async function route() {
  const path = location.hash.replace(/^#/, '') || '/runs';
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const main = document.getElementById('main');
  const gen = ++generation;
  let found = null;
  for (const [re, make] of routes) {
    const m = path.match(re);
    if (m) { found = make(m); break; }
  }
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (found && a.dataset.nav === found[0]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (!found) {
    main.replaceChildren(el('section', { class: 'panel' }, el('h1', {}, 'Not found'),
      el('p', {}, 'No page at ', el('code', {}, path), '. ', el('a', { href: '#/runs' }, 'Back to the runs'), '.')));
    return;
  }
  const [, page, rawParams] = found;
  const params = rawParams.map((p) => decodeURIComponent(p));
  main.replaceChildren(el('p', { class: 'loading' }, 'Loading…'));
  try {
    const stop = await page.render(main, params, { isCurrent: () => gen === generation });
    if (gen !== generation) { if (typeof stop === 'function') stop(); return; }
    cleanup = typeof stop === 'function' ? stop : null;
  } catch (e) {
    if (gen !== generation) return;
    main.replaceChildren(errorPanel(e));
  }
  // After a navigation (not the first load, where Tab should start at the skip link), move the
  // focus to the new content so that keyboard and screen-reader users land on it.
  if (!firstRoute && (document.activeElement === document.body || !document.activeElement)) main.focus({ preventScroll: true });
  firstRoute = false;
}

export function errorPanel(e) {
  const status = e instanceof ApiError ? e.status : 0;
  return el('section', { class: 'panel error', role: 'alert' },
    el('h1', {}, status === 401 ? 'Not authorised' : status === 404 ? 'Not found' : 'Could not load this page'),
    el('p', {}, e.message || String(e)),
    el('p', {}, el('button', { type: 'button', class: 'secondary', onclick: () => route() }, 'Try again')));
}

window.addEventListener('hashchange', route);
route();
