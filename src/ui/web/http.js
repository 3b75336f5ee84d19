// Requests to the dashboard's own server (same origin, absolute paths).
// When the server has a token, a 401 makes the page ask for it once (a modal form); the token is
// kept in sessionStorage and sent as `Authorization: Bearer <token>` on every later request.
const KEY = 'ddpipe-ui-token';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => (t ? sessionStorage.setItem(KEY, t) : sessionStorage.removeItem(KEY)),
};

let asking = null; // one prompt shared by concurrent requests

// Shows the token form; resolves with the token, or null when cancelled.
export function askToken(why) {
  if (asking) return asking;
  const dlg = document.getElementById('token-dialog');
  const form = dlg.querySelector('form');
  const input = dlg.querySelector('input');
  dlg.querySelector('.why').textContent = why || '';
  input.value = '';
  asking = new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener('submit', onSubmit);
      dlg.removeEventListener('cancel', onCancel);
      dlg.querySelector('.cancel').removeEventListener('click', onCancel);
      if (dlg.open) dlg.close();
      asking = null;
      resolve(value);
    };
    const onSubmit = (e) => { e.preventDefault(); done(input.value.trim() || null); };
    const onCancel = (e) => { e.preventDefault(); done(null); };
    form.addEventListener('submit', onSubmit);
    dlg.addEventListener('cancel', onCancel);
    dlg.querySelector('.cancel').addEventListener('click', onCancel);
    dlg.showModal();
    input.focus();
  });
  return asking;
}

async function parse(res) {
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

// fetch with the token; on 401 ask for a token once and retry. Returns the raw Response.
export async function request(path, opts = {}) {
  for (let tries = 0; ; ++tries) {
    const headers = new Headers(opts.headers || {});
    const t = token.get();
    if (t) headers.set('Authorization', `Bearer ${t}`);
    const res = await fetch(path, { ...opts, headers, cache: 'no-store' });
    if (res.status !== 401 || tries >= 2) return res;
    const given = await askToken(t ? 'The token was refused: enter the right one.' : 'This dashboard needs its access token.');
    if (!given) return res;
    token.set(given);
  }
}

// JSON in, JSON out; throws ApiError with the server's {"error"} message on a non-2xx answer.
export async function api(path, { method = 'GET', body, okStatuses = [] } = {}) {
  const opts = { method };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { 'Content-Type': 'application/json' };
  }
  const res = await request(path, opts);
  const data = await parse(res);
  if (res.ok || okStatuses.includes(res.status)) return { status: res.status, data };
  const msg = (data && typeof data === 'object' && (data.error || data.message)) ||
    (typeof data === 'string' && data) || res.statusText || 'request failed';
  throw new ApiError(res.status, `${res.status}: ${msg}`, data);
}

export const get = async (path) => (await api(path)).data;

export const enc = encodeURIComponent;
