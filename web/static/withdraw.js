/* kasa investor panel: the withdrawal form ("Para çek / Withdraw") and the investor's withdrawals with
 * live states. Uses app.js's api(), state and $() (loaded first); its own strings, in the panel's
 * language. The quote (fee, exact token amount) is shown before the request can be confirmed. */
'use strict';

const WD_I18N = {
  tr: {
    title: 'Para çek', token: 'Ağ', address: 'Alıcı adresi', amount: 'Tutar (hesap para biriminde)',
    quote: 'Ücreti ve tutarı göster', password: 'MT5 şifreniz (onay için)', submit: 'Çekimi onayla',
    history: 'Çekimlerim', empty: 'Henüz çekim yok.',
    quoted: (q) => `${q.amount} ${q.currency} çekilir; ücret ${q.fee} ${q.currency}; adrese giden: ${q.token_amount} ${q.token}.`,
    sent: 'Çekim talebiniz alındı.', bad_password: 'MT5 şifresi yanlış.', failed: 'Şu anda yapılamadı; tekrar deneyin.',
    st: { REQUESTED: 'Alındı', DEBITED: 'Onay bekliyor', APPROVED: 'Onaylandı', SENT: 'Gönderiliyor',
          COMPLETED: 'Tamamlandı', HELD: 'İncelemede', REJECTED: 'Reddedildi', REFUNDING: 'İade ediliyor',
          REFUNDED: 'İade edildi' },
  },
  en: {
    title: 'Withdraw', token: 'Network', address: 'Destination address', amount: "Amount (in the account's currency)",
    quote: 'Show the fee and the amount', password: 'Your MT5 password (to confirm)', submit: 'Confirm the withdrawal',
    history: 'My withdrawals', empty: 'No withdrawals yet.',
    quoted: (q) => `${q.amount} ${q.currency} is withdrawn; fee ${q.fee} ${q.currency}; the address receives ${q.token_amount} ${q.token}.`,
    sent: 'Your withdrawal request was received.', bad_password: 'The MT5 password is not right.',
    failed: 'It cannot be done right now; try again.',
    st: { REQUESTED: 'Received', DEBITED: 'Awaiting approval', APPROVED: 'Approved', SENT: 'Being sent',
          COMPLETED: 'Completed', HELD: 'Under review', REJECTED: 'Rejected', REFUNDING: 'Being refunded',
          REFUNDED: 'Refunded' },
  },
};

const wd = { quoted: null, listening: null };

function wdT(key, arg) {
  const v = WD_I18N[state.lang === 'en' ? 'en' : 'tr'][key];
  return typeof v === 'function' ? v(arg) : v;
}

function wdLabels() {
  document.querySelectorAll('[data-wd]').forEach((el) => { el.textContent = wdT(el.getAttribute('data-wd')); });
}

function wdAsk() {
  return { token: $('wd-token').value, address: $('wd-address').value.trim(), amount: $('wd-amount').value.trim() };
}

function wdError(text) {
  const e = $('wd-error');
  e.textContent = text || '';
  e.hidden = !text;
}

/* A quote or a request is the investor's own act: when the session's MT5 request rate is spent (the
 * panel's own balance refreshes count too), it waits the server's Retry-After (1..5 s) and asks again,
 * up to three times, rather than failing what the investor just confirmed. */
async function wdAct(path, body) {
  let r = await api('POST', path, body);
  for (let i = 0; i < 3 && r.status === 429; i++) {
    await new Promise((done) => setTimeout(done, Math.min(Math.max(r.retryAfter || 1, 1), 5) * 1000));
    r = await api('POST', path, body);
  }
  return r;
}

async function wdQuote() {
  wdError('');
  const r = await wdAct('/api/withdrawals/quote', wdAsk());
  const q = $('wd-quote-text');
  if (r.status !== 200) {
    wd.quoted = null;
    $('wd-submit').disabled = true;
    q.hidden = true;
    wdError((r.data && r.data.error) || wdT('failed'));
    return;
  }
  wd.quoted = JSON.stringify(wdAsk());
  q.textContent = wdT('quoted', r.data);
  q.hidden = false;
  $('wd-submit').disabled = false;
}

async function wdSubmit(ev) {
  ev.preventDefault();
  if (wd.quoted !== JSON.stringify(wdAsk())) { await wdQuote(); return; }   /* changed since the quote */
  const body = Object.assign(wdAsk(), { password: $('wd-password').value });
  $('wd-submit').disabled = true;
  const r = await wdAct('/api/withdrawals', body);
  $('wd-password').value = '';
  if (r.status === 201) {
    wdError('');
    $('wd-quote-text').textContent = wdT('sent');
    wd.quoted = null;
    await wdLoad();
    return;
  }
  $('wd-submit').disabled = false;
  wdError(r.status === 403 ? wdT('bad_password') : ((r.data && r.data.error) || wdT('failed')));
}

function wdRender(list) {
  const ul = $('wd-list');
  ul.textContent = '';
  $('wd-empty').hidden = list.length > 0;
  for (const w of list) {
    const li = document.createElement('li');
    li.className = 'deposit withdrawal';
    li.dataset.id = w.id;
    const main = document.createElement('div');
    main.className = 'dep-main';
    const amount = document.createElement('span');
    amount.className = 'dep-amount';
    amount.textContent = `${w.amount} ${w.currency} → ${w.token_amount} ${w.token}`;
    const st = document.createElement('span');
    st.className = 'dep-state badge wd-state';
    st.textContent = wdT('st')[w.state] || w.state;
    st.dataset.state = w.state;
    main.append(amount, st);
    const meta = document.createElement('div');
    meta.className = 'dep-meta muted small';
    meta.textContent = w.tx_hash ? `${w.address} · ${w.tx_hash}` : w.address;
    li.append(main, meta);
    ul.append(li);
  }
}

async function wdLoad() {
  if (!state.login) return;
  const r = await api('GET', '/api/withdrawals');
  if (r.status === 200 && r.data) wdRender(r.data.withdrawals || []);
}

/* Live: app.js's event stream carries "withdrawal" events; a change reloads the list and the balance. */
function wdWatch() {
  if (state.es && wd.listening !== state.es) {
    wd.listening = state.es;
    state.es.addEventListener('withdrawal', () => { wdLoad(); if (typeof loadMe === 'function') loadMe(); });
    wdLoad();
  }
  if (!state.login) wd.listening = null;
  wdLabels();
}

document.addEventListener('DOMContentLoaded', () => {
  $('wd-quote').addEventListener('click', wdQuote);
  $('wd-form').addEventListener('submit', wdSubmit);
  setInterval(wdWatch, 1000);
  setInterval(() => { if (state.login) wdLoad(); }, 15000);
});
