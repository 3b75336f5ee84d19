// #/try — drop or pick an image; POST /predict; the prediction and top-k as bars.
import { el, fmt } from '../util.js';
import { request } from '../http.js';

async function json(res) {
  try { return await res.json(); } catch { return null; }
}

export async function render(main) {
  const info = el('p', { class: 'sub' }, 'Checking the served model…');
  const input = el('input', { type: 'file', id: 'try-file', accept: 'image/*', class: 'sr-only', tabindex: -1 });
  const preview = el('img', { class: 'preview', alt: '', hidden: true });
  const topK = el('input', { type: 'number', id: 'try-topk', min: 1, max: 20, value: 5 });
  const result = el('div', { class: 'prediction', role: 'status', 'aria-live': 'polite' });
  const drop = el('label', { class: 'drop', for: 'try-file', tabindex: 0 },
    el('span', { class: 'drop-icon', 'aria-hidden': 'true' }, '⬆'),
    el('b', {}, 'Drop an image here'), el('span', { class: 'muted' }, 'or press to pick a file (PNG, JPEG)'));

  main.replaceChildren(
    el('div', { class: 'head' }, el('div', {}, el('p', { class: 'eyebrow' }, 'Serving'), el('h1', {}, 'Try it')), info),
    el('section', { class: 'panel try' },
      el('div', { class: 'try-in' }, drop, input,
        el('div', { class: 'field inline' }, el('label', { for: 'try-topk' }, 'Top k'), topK)),
      el('div', { class: 'try-out' }, preview, result)));

  // The served model's metadata, when the server has one (503 otherwise).
  (async () => {
    try {
      const list = await json(await request('/v1/models'));
      const name = list?.models?.[0];
      if (!name) { info.textContent = 'No model is served yet.'; return; }
      const res = await request(`/v2/models/${encodeURIComponent(name)}`);
      const meta = await json(res);
      if (res.ok && meta) {
        const version = meta.version || meta.versions?.[0];
        info.replaceChildren('Serving ', el('b', { class: 'mono' }, meta.name || name),
          ...(version ? [' version ', el('span', { class: 'mono' }, String(version))] : []));
      } else {
        info.textContent = (meta && meta.error) || `The model ${name} is not loaded yet.`;
      }
    } catch {
      info.textContent = 'Upload an image to classify it with the served model.';
    }
  })();

  const classify = async (file) => {
    if (!file) return;
    const url = URL.createObjectURL(file);
    preview.src = url;
    preview.alt = `the uploaded image ${file.name}`;
    preview.hidden = false;
    result.className = 'prediction';
    result.replaceChildren(el('p', { class: 'muted' }, 'Classifying…'));
    const form = new FormData();
    form.append('file', file, file.name);
    const k = Math.max(1, Math.min(20, Number(topK.value) || 5));
    let res, data;
    try {
      res = await request(`/predict?top_k=${k}`, { method: 'POST', body: form });
      data = await json(res);
    } catch (e) {
      result.replaceChildren(el('p', { class: 'notice bad', role: 'alert' }, `Request failed: ${e.message}`));
      return;
    }
    if (!res.ok) {
      result.replaceChildren(el('p', { class: 'notice bad', role: 'alert' },
        el('b', {}, res.status === 503 ? 'No model loaded: ' : `Error ${res.status}: `), (data && data.error) || res.statusText));
      return;
    }
    // The server's top_k rows name the class "class" (docs/serving.md); "label" is accepted too.
    const top = (Array.isArray(data.top_k) ? data.top_k : []).map((t) => ({ label: t.label ?? t.class, probability: t.probability }));
    result.replaceChildren(
      el('p', { class: 'eyebrow' }, 'Prediction'),
      el('p', { class: 'predicted', 'data-prediction': data.prediction }, String(data.prediction)),
      el('p', { class: 'muted' }, `confidence ${fmt.pct(data.confidence, 1)}`,
        data.version ? [' · ', el('span', { class: 'mono' }, data.version)] : ''),
      top.length ? el('table', { class: 'topk' },
        el('caption', { class: 'sr-only' }, 'Top classes by probability'),
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'class'), el('th', { scope: 'col', class: 'num' }, 'probability'))),
        el('tbody', {}, ...top.map((t) => el('tr', { 'data-label': t.label, class: t.label === data.prediction ? 'top' : null },
          el('th', { scope: 'row' }, t.label),
          el('td', { class: 'num bar' }, el('i', { style: `width:${Math.max(0.5, (t.probability || 0) * 100).toFixed(1)}%` }),
            el('span', {}, fmt.pct(t.probability, 1))))))) : null);
  };

  input.addEventListener('change', () => classify(input.files?.[0]));
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
  const stop = (e) => { e.preventDefault(); e.stopPropagation(); };
  for (const t of ['dragenter', 'dragover']) drop.addEventListener(t, (e) => { stop(e); drop.classList.add('over'); });
  for (const t of ['dragleave', 'drop']) drop.addEventListener(t, (e) => { stop(e); drop.classList.remove('over'); });
  drop.addEventListener('drop', (e) => classify(e.dataTransfer?.files?.[0]));
  return null;
}
