#!/usr/bin/env node
// Browser tests of the `ddpipe ui` dashboard, against a running server.
//
//   DDPIPE_UI_URL          base URL of the running dashboard, e.g. http://127.0.0.1:8080 (required)
//   DDPIPE_UI_STORE        the store folder the server reads (optional: cross-checks the pages
//                          with the store's files when it is a local folder)
//   DDPIPE_UI_SCREENSHOTS  folder for a screenshot of each page (default ./screenshots)
//   DDPIPE_UI_TOKEN        the server's token, when it has one: then the checks also prove that
//                          requests (and a promotion) without it are refused
//   DDPIPE_UI_IMAGE        an image for the try-it check, DDPIPE_UI_EXPECT_CLASS its class
//   DDPIPE_UI_MODEL        the model to use (default: the first with the most versions)
//   DDPIPE_UI_ALIAS        the alias the promotion check moves (default ui-test-<time>)
//   DDPIPE_UI_PROGRESS_S   how long to wait for a running job's progress to advance (default 60)
//   CHROMIUM               the browser (default /usr/bin/chromium)
//
// Exit status 0 when every check passed, 1 when one failed (each failure is printed), 2 on bad
// usage. The page must make no request to another host than the dashboard's.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = process.env;
if (!env.DDPIPE_UI_URL) {
  console.error('run.mjs: set DDPIPE_UI_URL to the base URL of a running `ddpipe ui` (e.g. http://127.0.0.1:8080)');
  process.exit(2);
}
const BASE = new URL(env.DDPIPE_UI_URL);
const ORIGIN = BASE.origin;
const UI = `${ORIGIN}/ui/`;
const STORE = env.DDPIPE_UI_STORE && fs.existsSync(env.DDPIPE_UI_STORE) ? env.DDPIPE_UI_STORE : '';
const SHOTS = env.DDPIPE_UI_SCREENSHOTS || path.resolve('screenshots');
const TOKEN = env.DDPIPE_UI_TOKEN || '';
const PROGRESS_S = Number(env.DDPIPE_UI_PROGRESS_S || 60);
fs.mkdirSync(SHOTS, { recursive: true });

const failures = [];
const results = [];
const log = (...a) => console.log(...a);

async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    results.push([name, 'ok']);
    log(`ok    ${name}${note ? ` (${note})` : ''} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
  } catch (e) {
    if (e && e.skip) {
      results.push([name, 'skipped']);
      log(`skip  ${name}: ${e.message}`);
      return;
    }
    failures.push(`${name}: ${e && e.message ? e.message : e}`);
    results.push([name, 'FAILED']);
    log(`FAIL  ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
const skip = (message) => Object.assign(new Error(message), { skip: true });
function expect(cond, message) { if (!cond) throw new Error(message); }

// --- the store, read directly (a local folder), to check the pages against ---------------------
function readJson(p) { try { return JSON.parse(fs.readFileSync(p, 'utf8')); } catch { return null; } }
function storeRuns() {
  if (!STORE) return null;
  const dir = path.join(STORE, 'runs');
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const model of fs.readdirSync(dir)) {
    const md = path.join(dir, model);
    if (!fs.statSync(md).isDirectory()) continue;
    for (const f of fs.readdirSync(md)) if (f.endsWith('.json')) out.push(`${model}/${f.slice(0, -5)}`);
  }
  return out;
}
function storeManifest(model, version) {
  return STORE ? readJson(path.join(STORE, 'models', model, version, 'manifest.json')) : null;
}
function storeAlias(model, alias) {
  return STORE ? readJson(path.join(STORE, 'models', model, 'aliases', alias)) : null;
}

// --- the browser -------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
const foreign = [];
const pageErrors = [];

async function newPage({ width = 1280, height = 900, withToken = true } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
  if (withToken && TOKEN) {
    await context.addInitScript((t) => { sessionStorage.setItem('ddpipe-ui-token', t); }, TOKEN);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('request', (req) => {
    const u = req.url();
    if (u.startsWith('data:') || u.startsWith('blob:')) return;
    let origin = '';
    try { origin = new URL(u).origin; } catch { /* odd URL: foreign */ }
    if (origin !== ORIGIN) foreign.push(u);
  });
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[19]|401 \(Unauthorized\)|409 \(Conflict\)/.test(m.text())) pageErrors.push(`${page.url()}: console: ${m.text()}`); });
  return page;
}

async function shot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// JSON from the API through the page (same origin, with the token when there is one).
async function apiJson(page, p, opts = {}) {
  return page.evaluate(async ([p, opts, token]) => {
    const headers = { ...(opts.headers || {}) };
    if (token && opts.auth !== false) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(p, { method: opts.method || 'GET', headers, body: opts.body, cache: 'no-store' });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    return { status: res.status, body };
  }, [p, opts, TOKEN]);
}

const go = async (page, hash) => {
  await page.goto(`${UI}${hash}`);
  await page.waitForSelector('main :is(h1, .panel)', { timeout: 15000 });
};

// Every chart on the page has its text alternative (a table of the same numbers).
async function chartsHaveTables(page) {
  const bad = await page.$$eval('figure.chart', (figs) => figs.filter((f) => f.querySelector('svg') && !f.querySelector('details table')).length);
  expect(bad === 0, `${bad} chart(s) without a <details><table> text alternative`);
}

const page = await newPage();
let models = [];
let model = null;

try {
  await check('the dashboard loads from /ui/ with its own files only', async () => {
    const res = await page.goto(UI);
    expect(res && res.ok(), `GET ${UI} answered ${res && res.status()}`);
    await page.waitForSelector('header.bar nav a[href="#/runs"]');
    const r = await apiJson(page, '/ui/api/models');
    expect(r.status === 200 && Array.isArray(r.body), `GET /ui/api/models: ${r.status}`);
    models = r.body;
    const pick = env.DDPIPE_UI_MODEL ? models.find((m) => m.name === env.DDPIPE_UI_MODEL)
      : [...models].sort((a, b) => (b.versions || []).length - (a.versions || []).length)[0];
    model = pick || null;
    return `${models.length} model(s)`;
  });

  await check('runs page lists the runs', async () => {
    await go(page, '#/runs');
    await page.waitForSelector('tr[data-run]');
    const rows = await page.$$eval('tr[data-run]', (trs) => trs.map((t) => t.dataset.run));
    const api = await apiJson(page, '/ui/api/runs');
    const want = (api.body || []).map((r) => `${r.name}/${r.run_id}`);
    for (const k of want) expect(rows.includes(k), `the API lists run ${k}, the page does not`);
    const inStore = storeRuns();
    if (inStore) for (const k of inStore) expect(rows.includes(k), `the store has runs/${k}.json, the page does not list it`);
    await shot(page, 'runs');
    return `${rows.length} row(s)`;
  });

  await check('a running job\'s progress advances without a reload', async () => {
    await go(page, '#/runs');
    await page.waitForSelector('tr[data-run]');
    const running = await page.$('tr[data-run][data-status="running"]');
    if (!running) throw skip('no running job in the store');
    const key = await running.getAttribute('data-run');
    const sel = `tr[data-run="${key}"]`;
    const read = () => page.$eval(sel, (t) => [Number(t.dataset.epoch), Number(t.dataset.step), t.dataset.status]);
    await page.evaluate(() => { window.__ddpipeNoReload = true; });
    const [e0, s0] = await read();
    const deadline = Date.now() + PROGRESS_S * 1000;
    let now = [e0, s0];
    while (Date.now() < deadline) {
      await page.waitForTimeout(1000);
      now = await read().catch(() => now);
      if (now[0] > e0 || (now[0] === e0 && now[1] > s0) || now[2] === 'succeeded') break;
    }
    const kept = await page.evaluate(() => window.__ddpipeNoReload === true);
    expect(kept, 'the page reloaded');
    expect(now[0] > e0 || (now[0] === e0 && now[1] > s0) || now[2] === 'succeeded',
      `run ${key} stayed at epoch ${e0} step ${s0} for ${PROGRESS_S} s`);
    await shot(page, 'runs-live');
    return `${key}: epoch ${e0} step ${s0} -> epoch ${now[0]} step ${now[1]}`;
  });

  await check('a running job\'s run page is live', async () => {
    const api = await apiJson(page, '/ui/api/runs');
    const r = (api.body || []).find((x) => x.status === 'running');
    if (!r) throw skip('no running job in the store');
    await go(page, `#/runs/${encodeURIComponent(r.name)}/${encodeURIComponent(r.run_id)}`);
    await page.waitForSelector('.kpis[data-step]');
    await page.evaluate(() => { window.__ddpipeNoReload = true; });
    const read = () => page.$eval('.kpis', (k) => [Number(k.dataset.epoch), Number(k.dataset.step), k.dataset.status]);
    const [e0, s0] = await read();
    const deadline = Date.now() + PROGRESS_S * 1000;
    let now = [e0, s0];
    while (Date.now() < deadline) {
      await page.waitForTimeout(1000);
      now = await read().catch(() => now);
      if (now[0] > e0 || (now[0] === e0 && now[1] > s0) || now[2] === 'succeeded') break;
    }
    expect(await page.evaluate(() => window.__ddpipeNoReload === true), 'the page reloaded');
    expect(now[0] > e0 || (now[0] === e0 && now[1] > s0) || now[2] === 'succeeded', `the run page stayed at epoch ${e0} step ${s0} for ${PROGRESS_S} s`);
    await chartsHaveTables(page);
    await shot(page, 'run-live');
    return `epoch ${e0} step ${s0} -> epoch ${now[0]} step ${now[1]}`;
  });

  await check('run page shows its curves (and error when failed)', async () => {
    const api = await apiJson(page, '/ui/api/runs');
    const runs = api.body || [];
    const r = runs.find((x) => x.status === 'failed') || runs[0];
    if (!r) throw skip('no runs');
    await go(page, `#/runs/${encodeURIComponent(r.name)}/${encodeURIComponent(r.run_id)}`);
    await page.waitForSelector('#curves figure');
    if (r.status === 'failed' && r.error) {
      const text = await page.textContent('main');
      expect(text.includes(String(r.error.message).split('\n')[0].slice(0, 60)), 'the failed run\'s error message is not shown');
    }
    await chartsHaveTables(page);
    await shot(page, 'run');
    return `${r.name}/${r.run_id} (${r.status})`;
  });

  await check('version page: curves with one point per epoch, confusion matrix, lineage, files', async () => {
    if (!model || !(model.versions || []).length) throw skip('no model with a version');
    const v = model.versions[0].version;
    await go(page, `#/models/${encodeURIComponent(model.name)}/${encodeURIComponent(v)}`);
    await page.waitForSelector('#curves figure');
    const detail = await apiJson(page, `/ui/api/models/${encodeURIComponent(model.name)}/versions/${encodeURIComponent(v)}`);
    const manifest = storeManifest(model.name, v) || detail.body?.manifest || {};
    const epochs = (manifest.epochs || []).length;
    expect(epochs > 0, `the manifest of ${v} has no epochs`);
    for (const s of ['epoch-loss/train_loss', 'epoch-loss/test_loss', 'epoch-acc/train_acc', 'epoch-acc/test_acc']) {
      const n = await page.getAttribute(`[data-series="${s}/${v}"]`, 'data-points');
      expect(Number(n) === epochs, `${s}/${v}: data-points ${n}, the manifest has ${epochs} epochs`);
    }
    const steps = (detail.body?.steps || []).length;
    if (steps) {
      const n = await page.getAttribute(`[data-series="step-loss/loss/${v}"]`, 'data-points');
      expect(Number(n) === steps, `step-loss/loss/${v}: data-points ${n}, the API has ${steps} steps`);
    }
    if (manifest.evaluation?.confusion_matrix) expect(await page.$('svg.cm'), 'no confusion matrix');
    expect(await page.$('#lineage table'), 'no lineage table');
    const files = await page.$$eval('#files a', (as) => as.map((a) => a.getAttribute('href')));
    expect(files.length === (detail.body?.files || []).length, `${files.length} file links, the API lists ${(detail.body?.files || []).length}`);
    for (const f of files) expect(!/^[a-z]+:\/\//i.test(f) || f.startsWith(ORIGIN), `file link to another host: ${f}`);
    for (const f of files) {
      const st = await page.evaluate(async ([u, token]) => {
        const r = await fetch(u, { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
        await r.arrayBuffer();
        return r.status;
      }, [f, TOKEN]);
      expect(st === 200, `GET ${f} answered ${st}`);
    }
    const manifestLink = await page.$('#files a[download="manifest.json"]');
    if (manifestLink) {
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), manifestLink.click()]);
      const got = await download.path();
      const bytes = got ? fs.readFileSync(got, 'utf8') : '';
      expect(bytes.includes('"epochs"'), `the downloaded manifest.json is not the manifest (${bytes.length} bytes)`);
    }
    await chartsHaveTables(page);
    await shot(page, 'version');
    return `${model.name} ${v}: ${epochs} epochs, ${steps} steps, ${files.length} files`;
  });

  await check('compare shows both versions and the config difference', async () => {
    if (!model || (model.versions || []).length < 2) throw skip('no model with two versions');
    const [a, b] = [model.versions[0].version, model.versions[1].version];
    await go(page, `#/compare/${encodeURIComponent(model.name)}/${encodeURIComponent(a)},${encodeURIComponent(b)}`);
    await page.waitForSelector('#curves figure');
    for (const v of [a, b]) {
      expect(await page.$(`[data-series="epoch-loss/train_loss/${v}"]`), `no train_loss curve of ${v}`);
      expect(await page.$(`[data-series="epoch-acc/test_acc/${v}"]`), `no test_acc curve of ${v}`);
    }
    const api = await apiJson(page, `/ui/api/models/${encodeURIComponent(model.name)}/compare?refs=${encodeURIComponent(a)},${encodeURIComponent(b)}`);
    const diff = api.body?.config_diff;
    const differs = diff && (Array.isArray(diff) ? diff.length : Object.keys(diff).length);
    const rows = await page.$$('#config-diff table.diff tbody tr');
    const ma = storeManifest(model.name, a), mb = storeManifest(model.name, b);
    if (ma && mb && JSON.stringify(ma.config) !== JSON.stringify(mb.config)) expect(differs, 'the configs differ in the store but config_diff is empty');
    if (differs) expect(rows.length > 0, 'config_diff is not empty but the page shows no difference');
    await chartsHaveTables(page);
    await shot(page, 'compare');
    return `${a} vs ${b}: ${rows.length} config difference(s)`;
  });

  await check('try it shows the class of an uploaded image', async () => {
    if (!env.DDPIPE_UI_IMAGE) throw skip('DDPIPE_UI_IMAGE not set');
    await go(page, '#/try');
    await page.setInputFiles('#try-file', env.DDPIPE_UI_IMAGE);
    const el = await page.waitForSelector('[data-prediction], .prediction .notice', { timeout: 30000 });
    const got = await el.getAttribute('data-prediction');
    expect(got !== null, `no prediction: ${await el.textContent()}`);
    if (env.DDPIPE_UI_EXPECT_CLASS) expect(got === env.DDPIPE_UI_EXPECT_CLASS, `predicted "${got}", expected "${env.DDPIPE_UI_EXPECT_CLASS}"`);
    expect((await page.$$('table.topk tbody tr')).length > 0, 'no top-k bars');
    await shot(page, 'try');
    return got;
  });

  await check('promoting moves the alias; a gate refusal is shown', async () => {
    if (!model || !(model.versions || []).length) throw skip('no model with a version');
    const alias = env.DDPIPE_UI_ALIAS || `ui-test-${Date.now().toString(36)}`;
    const vs = model.versions.map((v) => v.version);
    const older = vs[vs.length > 1 ? 1 : 0], newer = vs[0];
    const section = `section[data-model="${model.name}"]`;
    const promote = async ({ ref, gate = null, reason }) => {
      await page.fill(`${section} form[data-form="promote"] input[name="alias"]`, alias);
      await page.selectOption(`${section} form[data-form="promote"] select[name="ref"]`, ref);
      await page.fill(`${section} form[data-form="promote"] input[name="reason"]`, reason);
      const box = `${section} form[data-form="promote"] input[name="gate"]`;
      if (gate) {
        await page.check(box);
        await page.fill(`${section} form[data-form="promote"] input[name="if_better_than"]`, gate.than);
        await page.fill(`${section} form[data-form="promote"] input[name="metric"]`, gate.metric);
        await page.fill(`${section} form[data-form="promote"] input[name="min_delta"]`, String(gate.minDelta));
      } else {
        await page.uncheck(box);
      }
      await page.click(`${section} form[data-form="promote"] button[type="submit"]`);
      await page.waitForSelector(`${section} form[data-form="promote"] .result:is(.good, .bad)`, { timeout: 15000 });
      return page.$eval(`${section} form[data-form="promote"] .result`, (n) => ({ kind: n.classList.contains('good') ? 'good' : 'bad', text: n.textContent }));
    };
    await go(page, `#/models/${encodeURIComponent(model.name)}`);
    await page.waitForSelector(section);

    const r1 = await promote({ ref: older, reason: 'ui browser test' });
    expect(r1.kind === 'good', `promoting ${older} to ${alias} failed: ${r1.text}`);
    const shown = await page.textContent(`${section} [data-alias-version="${alias}"]`);
    expect(shown === older, `the page shows ${alias} -> ${shown}, expected ${older}`);
    const stored = storeAlias(model.name, alias);
    if (STORE) expect(stored && stored.version === older, `the store's aliases/${alias} is ${JSON.stringify(stored)}, expected ${older}`);

    // A version is never strictly better than itself: the gate refuses.
    const r2 = await promote({ ref: older, gate: { than: alias, metric: 'test_acc', minDelta: 0 }, reason: 'ui browser test: gate' });
    expect(r2.kind === 'bad' && /refused/i.test(r2.text), `the gate's refusal is not shown: ${r2.text}`);
    expect(await page.isVisible(`${section} form[data-form="promote"] .result.bad`), 'the refusal is not visible');
    await shot(page, 'models-refused');
    const after = await apiJson(page, `/ui/api/models/${encodeURIComponent(model.name)}/aliases`);
    expect(after.body?.[alias]?.version === older, `after a refusal ${alias} is ${after.body?.[alias]?.version}`);
    let note = `${alias} -> ${older}; refusal: ${r2.text.trim().slice(0, 80)}`;

    if (newer !== older) {
      const r3 = await promote({ ref: newer, reason: 'ui browser test: newer' });
      expect(r3.kind === 'good', `promoting ${newer} failed: ${r3.text}`);
      await page.selectOption(`${section} form[data-form="rollback"] select[name="alias"]`, alias);
      await page.fill(`${section} form[data-form="rollback"] input[name="reason"]`, 'ui browser test: rollback');
      await page.click(`${section} form[data-form="rollback"] button[type="submit"]`);
      await page.waitForSelector(`${section} form[data-form="rollback"] .result:is(.good, .bad)`);
      const back = await page.textContent(`${section} [data-alias-version="${alias}"]`);
      expect(back === older, `after the rollback ${alias} shows ${back}, expected ${older}`);
      note += `; ${newer} then rolled back`;
    }
    await shot(page, 'models');
    return note;
  });

  await check('with a token configured, requests and a promotion without it are refused', async () => {
    if (!TOKEN) throw skip('DDPIPE_UI_TOKEN not set (the server runs without a token)');
    if (!model || !(model.versions || []).length) throw skip('no model with a version');
    const bare = await newPage({ withToken: false });
    try {
      await bare.goto(`${UI}#/models`);
      const runs = await bare.evaluate(async () => (await fetch('/ui/api/runs', { cache: 'no-store' })).status);
      expect(runs === 401, `GET /ui/api/runs without the token answered ${runs}`);
      const alias = `ui-test-token-${Date.now().toString(36)}`;
      const res = await bare.evaluate(async ([m, alias, ref]) => {
        const r = await fetch(`/ui/api/models/${encodeURIComponent(m)}/promote`, { method: 'POST',
          headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ alias, ref, reason: 'no token' }) });
        return r.status;
      }, [model.name, alias, model.versions[0].version]);
      expect(res === 401, `POST promote without the token answered ${res}`);
      const aliases = await apiJson(page, `/ui/api/models/${encodeURIComponent(model.name)}/aliases`);
      expect(!(aliases.body && aliases.body[alias]), `the alias ${alias} was created without a token`);
      await bare.waitForSelector('#token-dialog[open]');
      await shot(bare, 'token-dialog');
      // A wrong token is refused too; the right one opens the page.
      await bare.fill('#token-input', 'wrong-token');
      await bare.click('#token-dialog button[type="submit"]');
      await bare.waitForSelector('#token-dialog[open]');
      await bare.fill('#token-input', TOKEN);
      await bare.click('#token-dialog button[type="submit"]');
      await bare.waitForSelector('section[data-model]');
    } finally {
      await bare.context().close();
    }
    return 'GET and promote answered 401';
  });

  await check('phone width: the pages fit and the runs table becomes cards', async () => {
    const phone = await newPage({ width: 390, height: 844 });
    try {
      const pages = [['#/runs', 'runs'], ['#/models', 'models'], ['#/try', 'try']];
      if (model && (model.versions || []).length) pages.push([`#/models/${encodeURIComponent(model.name)}/${encodeURIComponent(model.versions[0].version)}`, 'version']);
      for (const [hash, name] of pages) {
        await phone.goto(`${UI}${hash}`);
        await phone.waitForSelector('main :is(h1, .panel)');
        await phone.waitForTimeout(300);
        const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow <= 1, `${hash} is ${overflow}px wider than the phone's screen`);
        await shot(phone, `phone-${name}`);
      }
    } finally {
      await phone.context().close();
    }
  });

  await check('keyboard: the page is reachable with Tab, with a visible focus style', async () => {
    await go(page, '#/models');
    await page.reload();
    await page.waitForSelector('section[data-model]');
    const seen = [];
    for (let i = 0; i < 6; ++i) {
      await page.keyboard.press('Tab');
      seen.push(await page.evaluate(() => {
        const a = document.activeElement;
        const st = getComputedStyle(a);
        return { tag: a.tagName, text: (a.textContent || '').trim().slice(0, 30), outline: st.outlineStyle !== 'none' && parseFloat(st.outlineWidth) > 0 };
      }));
    }
    expect(seen.some((f) => f.tag === 'A' && f.text === 'Models'), `Tab never reached the navigation: ${JSON.stringify(seen)}`);
    const bad = seen.filter((f) => !['A', 'BUTTON', 'INPUT', 'SELECT', 'SUMMARY', 'LABEL'].includes(f.tag) || !f.outline);
    expect(!bad.length, `focused without a real control or a visible outline: ${JSON.stringify(bad)}`);
    return seen.map((f) => f.text || f.tag).join(' → ');
  });
} finally {
  await browser.close();
}

if (foreign.length) failures.push(`requests to hosts other than ${ORIGIN}: ${[...new Set(foreign)].slice(0, 10).join(', ')}`);
if (pageErrors.length) failures.push(`errors in the page: ${[...new Set(pageErrors)].slice(0, 10).join(' | ')}`);
log(`\n${results.filter((r) => r[1] === 'ok').length} passed, ${results.filter((r) => r[1] === 'skipped').length} skipped, ${failures.length} failed; screenshots in ${SHOTS}`);
if (failures.length) {
  console.error('\nFAILED:\n' + failures.map((f) => `  - ${f}`).join('\n'));
  process.exit(1);
}
