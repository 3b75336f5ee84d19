// #/models (and #/models/:model): versions, aliases with their history, promote and rollback.
import { el, fmt, href, isNum } from '../util.js';
import { get, api, enc } from '../http.js';

function versionsTable(m) {
  const byVersion = {};
  for (const [a, v] of Object.entries(m.aliases || {})) (byVersion[v] ||= []).push(a);
  const compareBtn = el('button', { type: 'button', class: 'secondary', disabled: true }, 'Compare selected');
  const hint = el('span', { class: 'muted small' }, 'Select two or more versions to compare them.');
  const boxes = [];
  const sync = () => {
    const n = boxes.filter((b) => b.checked).length;
    compareBtn.disabled = n < 2;
  };
  compareBtn.addEventListener('click', () => {
    const picked = boxes.filter((b) => b.checked).map((b) => b.value);
    location.hash = href('compare', m.name, picked.join(','));
  });
  const rows = (m.versions || []).map((v) => {
    const box = el('input', { type: 'checkbox', value: v.version, 'aria-label': `select ${v.version}`, onchange: sync });
    boxes.push(box);
    return el('tr', { 'data-version': v.version },
      el('td', {}, box),
      el('th', { scope: 'row' }, el('a', { class: 'mono', href: href('models', m.name, v.version) }, v.version),
        ...aliasOrder(Object.fromEntries((byVersion[v.version] || []).map((a) => [a, 1]))).map((a) => el('span', { class: `tag${a === 'production' ? ' main' : ''}`, 'data-alias': a }, a === 'model_latest' ? 'latest' : a))),
      el('td', { class: 'nowrap' }, fmt.time(v.created)),
      v.error ? el('td', { colspan: 4, class: 'bad-text' }, `unreadable manifest: ${v.error}`) : null,
      v.error ? null : el('td', { class: 'num' }, fmt.pct(v.test_acc)),
      v.error ? null : el('td', { class: 'num' }, fmt.num(v.test_loss, 4)),
      v.error ? null : el('td', { class: 'num' }, String(v.epochs ?? '–')),
      v.error ? null : el('td', { class: 'num' }, String(v.world_size ?? '–')));
  });
  return [
    el('div', { class: 'scroll' }, el('table', { class: 'versions' },
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, el('span', { class: 'sr-only' }, 'select')),
        ...['version', 'created', 'test acc', 'test loss', 'epochs', 'ranks'].map((h, i) => el('th', { scope: 'col', class: i > 1 ? 'num' : null }, h)))),
      el('tbody', {}, ...rows))),
    el('div', { class: 'row-actions' }, compareBtn, hint),
  ];
}

// production first, then the other aliases by name, model_latest (moved by every publish) last.
function aliasOrder(aliases) {
  const rank = (a) => (a === 'production' ? 0 : a === 'model_latest' ? 2 : 1);
  return Object.keys(aliases || {}).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function historyTable(hist) {
  if (!hist.length) return el('p', { class: 'muted small' }, 'No recorded moves.');
  return el('div', { class: 'scroll' }, el('table', { class: 'history' },
    el('thead', {}, el('tr', {}, ...['#', 'time', 'from', 'to', 'actor', 'gate', 'reason'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...[...hist].sort((a, b) => (b.seq ?? 0) - (a.seq ?? 0)).map((h) => el('tr', {},
      el('td', { class: 'num' }, String(h.seq ?? '')),
      el('td', { class: 'nowrap' }, fmt.time(h.time)),
      el('td', { class: 'mono' }, h.from || '–'),
      el('td', { class: 'mono' }, h.to || '–'),
      el('td', {}, h.actor || ''),
      el('td', {}, h.gate ? el('span', { class: `tag ${h.gate.pass ? 'pass' : 'fail'}`, title: h.gate.reason || '' }, h.gate.pass ? 'passed' : 'refused') : el('span', { class: 'muted' }, '–'),
        h.gate?.reason ? el('div', { class: 'small muted' }, h.gate.reason) : null),
      el('td', {}, h.reason || ''))))));
}

function aliasesBlock(m, aliases) {
  const names = aliasOrder(aliases);
  if (!names.length) return el('p', { class: 'muted' }, 'No aliases yet: promote a version below.');
  return el('div', { class: 'aliases' }, ...names.map((a) => {
    const info = aliases[a] || {};
    const hist = info.history || [];
    return el('div', { class: 'alias', 'data-alias': a },
      el('h3', {}, el('span', { class: `tag${a === 'production' ? ' main' : ''}` }, a), ' → ',
        info.version ? el('a', { class: 'mono', href: href('models', m.name, info.version), 'data-alias-version': a }, info.version) : '–'),
      el('details', { open: names.length <= 3 && hist.length <= 5 ? true : null }, el('summary', {}, `History (${hist.length} move${hist.length === 1 ? '' : 's'})`), historyTable(hist)));
  }));
}

function field(label, input, help) {
  const id = input.id;
  return el('div', { class: 'field' }, el('label', { for: id }, label), input, help ? el('small', { class: 'muted' }, help) : null);
}

function promoteForm(m, aliases, reload) {
  const id = (s) => `${s}-${m.name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
  const aliasNames = [...new Set(['production', 'staging', ...Object.keys(aliases || {})])].filter((a) => a !== 'model_latest');
  const alias = el('input', { id: id('p-alias'), name: 'alias', list: id('aliases'), required: true, value: 'production', autocomplete: 'off' });
  const datalist = el('datalist', { id: id('aliases') }, ...aliasNames.map((a) => el('option', { value: a })));
  const ref = el('select', { id: id('p-ref'), name: 'ref', required: true },
    el('option', { value: 'latest' }, 'latest'),
    ...(m.versions || []).map((v) => el('option', { value: v.version }, v.version)));
  if ((m.versions || []).length) ref.value = m.versions[0].version;
  const gateOn = el('input', { type: 'checkbox', id: id('p-gate'), name: 'gate' });
  const better = el('input', { id: id('p-better'), name: 'if_better_than', list: id('aliases'), value: 'production', autocomplete: 'off' });
  const metric = el('input', { id: id('p-metric'), name: 'metric', value: 'test_acc', autocomplete: 'off' });
  const delta = el('input', { id: id('p-delta'), name: 'min_delta', type: 'number', step: 'any', value: '0' });
  const reason = el('input', { id: id('p-reason'), name: 'reason', autocomplete: 'off', placeholder: 'why this version' });
  const gateFields = el('fieldset', { class: 'gate', disabled: true },
    el('legend', {}, 'Gate'),
    field('If better than', better, 'alias or version'), field('Metric', metric, 'a key of the manifest’s final metrics'),
    field('Min delta', delta, '0: strictly better'));
  gateOn.addEventListener('change', () => { gateFields.disabled = !gateOn.checked; });
  const result = el('div', { class: 'result', role: 'status', 'aria-live': 'polite' });
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Promote');
  const form = el('form', { class: 'promote', 'data-form': 'promote', novalidate: true },
    el('h3', {}, 'Promote'),
    el('div', { class: 'fields' }, field('Alias', alias), datalist, field('Version', ref), field('Reason', reason)),
    el('label', { class: 'check', for: gateOn.id }, gateOn, ' Only if better (gate)'),
    gateFields,
    el('div', { class: 'actions' }, submit), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!alias.value.trim()) { show(result, 'bad', 'Name an alias.'); alias.focus(); return; }
    const body = { alias: alias.value.trim(), ref: ref.value, reason: reason.value.trim() };
    if (gateOn.checked) {
      body.if_better_than = better.value.trim();
      body.metric = metric.value.trim() || 'test_acc';
      body.min_delta = Number(delta.value) || 0;
    }
    submit.disabled = true;
    show(result, 'info', 'Promoting…');
    try {
      const { status, data } = await api(`/ui/api/models/${enc(m.name)}/promote`, { method: 'POST', body, okStatuses: [409] });
      if (status === 409 || data?.promoted === false) {
        show(result, 'bad', el('b', {}, 'Refused: '), data?.error || 'the gate refused the promotion', ' — the alias did not move.');
      } else {
        await reload(() => {});
        const r2 = document.querySelector(`[data-model="${CSS.escape(m.name)}"] form[data-form="promote"] .result`);
        show(r2 || result, 'good', el('b', {}, 'Promoted: '), `${body.alias} → ${data?.version || data?.to || body.ref}`);
        return;
      }
    } catch (err) {
      show(result, 'bad', el('b', {}, err.status === 401 ? 'Not authorised: ' : 'Failed: '), err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function rollbackForm(m, aliases, reload) {
  const id = (s) => `${s}-${m.name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
  const names = aliasOrder(aliases).filter((a) => a !== 'model_latest');
  const alias = el('select', { id: id('r-alias'), name: 'alias', disabled: !names.length ? true : null },
    ...names.map((a) => el('option', { value: a }, a)));
  const reason = el('input', { id: id('r-reason'), name: 'reason', autocomplete: 'off', placeholder: 'e.g. canary errors' });
  const result = el('div', { class: 'result', role: 'status', 'aria-live': 'polite' });
  const submit = el('button', { type: 'submit', class: 'danger', disabled: !names.length ? true : null }, 'Roll back');
  const form = el('form', { class: 'rollback', 'data-form': 'rollback' },
    el('h3', {}, 'Roll back'),
    el('p', { class: 'muted small' }, 'Points the alias back at the version it pointed at before its last move.'),
    el('div', { class: 'fields' }, field('Alias', alias), field('Reason', reason)),
    el('div', { class: 'actions' }, submit), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      const { data } = await api(`/ui/api/models/${enc(m.name)}/rollback`, { method: 'POST', body: { alias: alias.value, reason: reason.value.trim() } });
      await reload(() => {});
      const r2 = document.querySelector(`[data-model="${CSS.escape(m.name)}"] form[data-form="rollback"] .result`);
      show(r2 || result, 'good', el('b', {}, 'Rolled back: '), `${alias.value} → ${data?.move?.to || data?.version || data?.to || 'previous version'}`);
    } catch (err) {
      show(result, 'bad', el('b', {}, 'Refused: '), err.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function show(box, kind, ...content) {
  box.className = `result notice ${kind}`;
  box.replaceChildren(...content);
}

async function modelSection(m, rerender) {
  let aliases = {};
  let aliasError = null;
  try { aliases = await get(`/ui/api/models/${enc(m.name)}/aliases`); } catch (e) { aliasError = e; }
  const latest = (m.versions || [])[0];
  return el('section', { class: 'panel model', 'data-model': m.name, id: `model-${m.name}` },
    el('div', { class: 'model-head' },
      el('h2', {}, el('a', { href: href('models', m.name) }, m.name)),
      el('span', { class: 'muted' }, `${(m.versions || []).length} version${(m.versions || []).length === 1 ? '' : 's'}`,
        latest && isNum(latest.test_acc) ? ` · latest ${fmt.pct(latest.test_acc)} test accuracy` : '')),
    el('div', { class: 'model-grid' },
      el('div', {}, el('h3', {}, 'Versions'), ...versionsTable(m)),
      el('div', {}, el('h3', {}, 'Aliases'),
        aliasError ? el('p', { class: 'notice bad' }, `Could not read the aliases: ${aliasError.message}`) : aliasesBlock(m, aliases))),
    el('div', { class: 'forms' }, promoteForm(m, aliases, rerender), rollbackForm(m, aliases, rerender)));
}

export async function render(main, [only]) {
  const draw = async () => {
    const list = await get('/ui/api/models');
    const shown = only ? list.filter((m) => m.name === only) : list;
    const sections = await Promise.all(shown.map((m) => modelSection(m, draw)));
    main.replaceChildren(
      el('div', { class: 'head' }, el('div', {},
        el('p', { class: 'eyebrow' }, only ? el('a', { href: '#/models' }, 'Models') : 'Registry'),
        el('h1', {}, only || 'Models')),
      el('p', { class: 'sub' }, only ? '' : `${list.length} model${list.length === 1 ? '' : 's'} in the store`)),
      ...(sections.length ? sections : [el('section', { class: 'panel' }, el('p', { class: 'empty' },
        only ? `No model named ${only}.` : 'No models yet: a run publishes one.'))]));
  };
  await draw();
  return null;
}
