/* kasa investor panel: login, balance, deposit addresses with QR, live deposit history.
 * Plain browser JavaScript (no build step, no external files); Turkish by default, English on demand. */
'use strict';

const I18N = {
  tr: {
    title: 'Kasa — Yatırım', logout: 'Çıkış', login_title: 'Giriş',
    login_help: 'MT5 hesap numaranız ve şifrenizle giriş yapın.',
    login_label: 'MT5 hesap numarası', password_label: 'Şifre', login_button: 'Giriş yap',
    login_short: 'Hesap no', account_title: 'Hesap', balance: 'Bakiye', equity: 'Varlık',
    wallets_title: 'Yatırma adresleri',
    wallets_help: 'Her ağ için size özel bir adres. Yalnızca belirtilen ağdan ve tokendan gönderin.',
    deposits_title: 'Yatırma geçmişi', deposits_empty: 'Henüz yatırma yok.',
    deposits_stale: 'Liste güncel olmayabilir: sunucular şu an anlaşamıyor, bu sunucunun bildikleri gösteriliyor.',
    live_on: 'Canlı güncelleme açık.', live_off: 'Canlı güncelleme bağlanıyor…',
    create: (w) => `${w.asset} (${netName(w)}) adresi oluştur`, creating: 'Oluşturuluyor…',
    address_for: (w) => `${w.asset} adresiniz (${netName(w)})`,
    copy: 'Adresi kopyala', copied: 'Adres kopyalandı.',
    qr_alt: (w) => `${w.asset} (${netName(w)}) adresinin QR kodu`,
    warn: (w) => w.asset === w.native
      ? `Bu adrese yalnızca ${netChain(w)} ağında ${w.asset} gönderin. Başka bir token veya ağ kullanırsanız paranız kaybolabilir.`
      : `Bu adrese yalnızca ${netChain(w)} (${w.network}) ağında ${w.asset} gönderin. Başka bir ağdan (ör. ${otherNet(w)}) veya başka bir token gönderirseniz paranız kaybolabilir.`,
    st_PENDING: (d) => `Onaylanıyor ${confs(d)}`, st_RECEIVED: 'İşleniyor', st_LOCKED: 'İşleniyor',
    st_CREDITED: 'Hesaba geçti', st_NOTIFIED: 'Hesaba geçti', st_HELD: 'İncelemede', st_REJECTED: 'Reddedildi',
    credited: (d) => `Hesaba geçen: ${d.credited}`, ticket: (d) => `İşlem no: ${d.ticket}`,
    bad_login: 'Hesap numarası veya şifre yanlış.', limited: (s) => `Çok fazla hatalı deneme. ${mins(s)} dakika sonra tekrar deneyin.`,
    need_fields: 'Hesap numarası (yalnızca rakam) ve şifre gerekli.', unavailable: 'Sunucuya ulaşılamıyor; tekrar deneyin.',
    expired: 'Oturumunuz sona erdi; lütfen tekrar giriş yapın.',
    create_failed: 'Adres şu anda oluşturulamadı; lütfen biraz sonra tekrar deneyin.',
    dep_update: (d) => `Yatırma güncellendi: ${d.amount} ${tokenAsset(d.token)} — ${stateText(d)}`,
  },
  en: {
    title: 'Kasa — Deposits', logout: 'Log out', login_title: 'Log in',
    login_help: 'Log in with your MT5 account number and password.',
    login_label: 'MT5 account number', password_label: 'Password', login_button: 'Log in',
    login_short: 'Account', account_title: 'Account', balance: 'Balance', equity: 'Equity',
    wallets_title: 'Deposit addresses',
    wallets_help: 'A personal address per network. Send only the stated token on the stated network.',
    deposits_title: 'Deposit history', deposits_empty: 'No deposits yet.',
    deposits_stale: 'This list may be out of date: the servers cannot agree right now, so this server\'s own records are shown.',
    live_on: 'Live updates on.', live_off: 'Connecting live updates…',
    create: (w) => `Create ${w.asset} (${netName(w)}) address`, creating: 'Creating…',
    address_for: (w) => `Your ${w.asset} address (${netName(w)})`,
    copy: 'Copy address', copied: 'Address copied.',
    qr_alt: (w) => `QR code of your ${w.asset} (${netName(w)}) address`,
    warn: (w) => w.asset === w.native
      ? `Send only ${w.asset} on ${netChain(w)} to this address. Any other token or network may be lost.`
      : `Send only ${w.asset} on ${netChain(w)} (${w.network}) to this address. ${w.asset} sent on another network (e.g. ${otherNet(w)}) or any other token may be lost.`,
    st_PENDING: (d) => `Confirming ${confs(d)}`, st_RECEIVED: 'Processing', st_LOCKED: 'Processing',
    st_CREDITED: 'Credited', st_NOTIFIED: 'Credited', st_HELD: 'Under review', st_REJECTED: 'Rejected',
    credited: (d) => `Credited: ${d.credited}`, ticket: (d) => `Ticket: ${d.ticket}`,
    bad_login: 'Wrong account number or password.', limited: (s) => `Too many failed attempts. Try again in ${mins(s)} minutes.`,
    need_fields: 'Account number (digits only) and password are required.', unavailable: 'The server cannot be reached; try again.',
    expired: 'Your session has ended; please log in again.',
    create_failed: 'The address could not be created right now; please try again shortly.',
    dep_update: (d) => `Deposit updated: ${d.amount} ${tokenAsset(d.token)} — ${stateText(d)}`,
  },
};

const CHAIN_NAMES = { TRON: 'TRON', TTRON: 'TRON Nile', ETH: 'Ethereum', SETH: 'Ethereum Sepolia', BSC_BNB: 'BNB Smart Chain', SOL: 'Solana' };
const NATIVE = { TRON: 'TRX', TTRON: 'TRX', ETH: 'ETH', SETH: 'ETH', BSC_BNB: 'BNB', SOL: 'SOL' };

const state = { lang: 'tr', csrf: null, login: null, wallets: [], deposits: [], me: null, es: null, refresh: null, meAgain: null };

function $(id) { return document.getElementById(id); }
function t(key, arg) { const v = I18N[state.lang][key]; return typeof v === 'function' ? v(arg) : v; }
function netChain(w) { return CHAIN_NAMES[w.chain] || w.chain; }
function netName(w) { return w.network === 'native' ? netChain(w) : `${netChain(w)} ${w.network}`; }
function otherNet(w) { return w.network === 'TRC20' ? 'ERC20' : 'TRC20'; }
function confs(d) { return d.threshold > 0 ? `${Math.max(0, d.confirmations)}/${d.threshold}` : ''; }
function mins(s) { return Math.max(1, Math.ceil(s / 60)); }
function tokenAsset(token) {
  if (!token) return '';
  const i = token.indexOf('_');
  return i > 0 && !NATIVE[token] ? token.slice(i + 1) : (NATIVE[token] || token);
}
function stateText(d) { const v = I18N[state.lang]['st_' + d.state]; return typeof v === 'function' ? v(d) : (v || d.state); }
function announce(text) { const a = $('announce'); a.textContent = ''; setTimeout(() => { a.textContent = text; }, 30); }

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  if (method !== 'GET' && state.csrf) opt.headers['X-CSRF-Token'] = state.csrf;
  let res;
  try { res = await fetch(path, opt); } catch (e) { return { status: 0, data: { error: 'network' } }; }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  return { status: res.status, data, retryAfter: Number(res.headers.get('Retry-After') || 0) };
}

/* ---- language ---- */
function setLang(lang) {
  state.lang = I18N[lang] ? lang : 'tr';
  try { localStorage.setItem('kasa.lang', state.lang); } catch (e) { /* private mode */ }
  document.documentElement.lang = state.lang;
  document.title = t('title');
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $('lang-tr').setAttribute('aria-pressed', String(state.lang === 'tr'));
  $('lang-en').setAttribute('aria-pressed', String(state.lang === 'en'));
  $('live').textContent = t(state.es && state.es.readyState === 1 ? 'live_on' : 'live_off');
  if (state.login) { renderWallets(); renderDeposits(); }
}

/* ---- views ---- */
function showLogin(message) {
  stopEvents();
  state.login = null; state.csrf = null;
  $('app-view').hidden = true; $('logout').hidden = true; $('login-view').hidden = false;
  const err = $('login-error');
  if (message) { err.textContent = message; err.hidden = false; } else { err.hidden = true; }
  $('login').focus();
}

async function showApp(session) {
  state.login = session.login; state.csrf = session.csrf;
  $('login-view').hidden = true; $('app-view').hidden = false; $('logout').hidden = false;
  $('acct-login').textContent = String(session.login);
  startEvents();
  await Promise.all([loadMe(), loadWallets(), loadDeposits()]);
}

/* The balance comes from MT5 through the session's request rate; a refresh that meets a spent rate
 * (429) is asked again after the server's Retry-After, once at a time, so the balance shown never stays
 * behind the last event. */
async function loadMe() {
  const r = await api('GET', '/api/me');
  if (r.status === 401) return showLogin(t('expired'));
  if (r.status === 429) {
    if (!state.meAgain) {
      state.meAgain = setTimeout(() => { state.meAgain = null; if (state.login) loadMe(); },
        Math.min(Math.max(r.retryAfter || 1, 1), 30) * 1000);
    }
    return;
  }
  if (r.status !== 200) return;
  state.me = r.data;
  const cur = r.data.currency ? ' ' + r.data.currency : '';
  $('acct-name').textContent = r.data.name || '';
  $('balance').textContent = r.data.balance + cur;
  $('equity').textContent = r.data.equity ? r.data.equity + cur : '—';
}

async function loadWallets() {
  const r = await api('GET', '/api/wallets');
  if (r.status === 401) return showLogin(t('expired'));
  if (r.status !== 200) return;
  state.wallets = r.data.wallets.map((w) => Object.assign(w, { native: NATIVE[w.chain] }));
  renderWallets();
}

function renderWallets() {
  const list = $('wallet-list');
  list.textContent = '';
  state.wallets.forEach((w) => {
    const li = $('wallet-item').content.firstElementChild.cloneNode(true);
    li.dataset.token = w.token;
    li.querySelector('.wallet-title').textContent = `${w.asset} · ${netName(w)}`;
    li.querySelector('.warning').textContent = t('warn', w);
    const body = li.querySelector('.wallet-body');
    const create = li.querySelector('.create');
    if (w.address) {
      create.remove();
      const id = 'addr-' + w.token;
      const input = li.querySelector('.address');
      input.id = id; input.value = w.address;
      const label = li.querySelector('.addr-label');
      label.htmlFor = id; label.textContent = t('address_for', w);
      const img = li.querySelector('.qr');
      img.src = w.qr; img.alt = t('qr_alt', w);
      const copy = li.querySelector('.copy');
      copy.textContent = t('copy');
      copy.addEventListener('click', () => copyAddress(input));
    } else {
      body.remove();
      create.textContent = t('create', w);
      create.addEventListener('click', () => createWallet(w, create));
    }
    list.appendChild(li);
  });
}

async function copyAddress(input) {
  let ok = false;
  try { await navigator.clipboard.writeText(input.value); ok = true; } catch (e) { ok = false; }
  if (!ok) { input.select(); try { ok = document.execCommand('copy'); } catch (e) { ok = false; } }
  announce(t('copied'));
}

async function createWallet(w, button) {
  button.disabled = true; button.textContent = t('creating');
  const r = await api('POST', '/api/wallets', { chain: w.token });
  const err = $('wallets-error');
  if (r.status === 200 || r.status === 201) {
    err.hidden = true;
    await loadWallets();
    const input = document.getElementById('addr-' + w.token);
    if (input) input.focus();
    return;
  }
  if (r.status === 401) return showLogin(t('expired'));
  err.textContent = t('create_failed');
  if (r.data && r.data.error) err.title = r.data.error;   // the server's reason, for support
  err.hidden = false;
  button.disabled = false; button.textContent = t('create', w);
}

async function loadDeposits() {
  const r = await api('GET', '/api/deposits');
  if (r.status === 401) return showLogin(t('expired'));
  if (r.status !== 200) return;
  state.deposits = r.data.deposits;
  state.depositsStale = r.data.stale === true;   // cluster mode: MongoDB did not answer
  renderDeposits();
  // Cluster mode: the live stream carries this node's transitions only; another node's credit shows
  // by reading the list again.
  clearTimeout(state.clusterPoll);
  if (r.data.cluster && state.login) state.clusterPoll = setTimeout(loadDeposits, 5000);
}

function fmtTime(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString(state.lang === 'tr' ? 'tr-TR' : 'en-GB',
    { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}

function renderDeposits() {
  const list = $('deposit-list');
  list.textContent = '';
  $('deposits-empty').hidden = state.deposits.length > 0;
  $('deposits-stale').hidden = !state.depositsStale;
  state.deposits.forEach((d) => {
    const li = $('deposit-item').content.firstElementChild.cloneNode(true);
    li.dataset.id = d.id; li.dataset.state = d.state;
    li.querySelector('.dep-amount').textContent = `${d.amount} ${tokenAsset(d.token)}`;
    li.querySelector('.dep-state').textContent = stateText(d);
    li.querySelector('.dep-time').textContent = fmtTime(d.created_ms || d.time);
    li.querySelector('.dep-credit').textContent = d.credited ? t('credited', d) + (state.me && state.me.currency ? ' ' + state.me.currency : '') : '';
    li.querySelector('.dep-ticket').textContent = d.ticket ? t('ticket', d) : '';
    const p = li.querySelector('.dep-progress');
    if (d.state === 'PENDING' && d.threshold > 0) { p.max = d.threshold; p.value = Math.max(0, d.confirmations); }
    else { p.max = 1; p.value = ['RECEIVED', 'LOCKED'].includes(d.state) ? 0.9 : 0; }
    p.setAttribute('aria-label', stateText(d));
    list.appendChild(li);
  });
}

/* ---- live updates ---- */
function scheduleRefresh() {
  clearTimeout(state.refresh);
  state.refresh = setTimeout(() => { loadDeposits(); loadMe(); }, 250);
}

function onDeposit(ev) {
  let d;
  try { d = JSON.parse(ev.data); } catch (e) { return; }
  const known = state.deposits.find((x) => x.id === d.id);
  if (known) {
    Object.assign(known, { state: d.state, status: d.status, confirmations: d.confirmations, threshold: d.threshold });
    if (d.credited) known.credited = d.credited;
    if (d.ticket) known.ticket = d.ticket;
    renderDeposits();
  }
  announce(t('dep_update', d));
  scheduleRefresh();
}

function startEvents() {
  stopEvents();
  if (!window.EventSource) return;
  const es = new EventSource('/api/events');
  state.es = es;
  es.addEventListener('open', () => { $('live').textContent = t('live_on'); scheduleRefresh(); });
  es.addEventListener('deposit', onDeposit);
  es.addEventListener('resync', () => { loadDeposits(); loadMe(); });
  es.addEventListener('error', async () => {
    $('live').textContent = t('live_off');
    const r = await api('GET', '/api/session');
    if (r.status === 401 && state.login) { showLogin(t('expired')); return; }
    // the browser retries by itself unless the stream was refused; then start it again shortly
    if (es.readyState === 2 && state.es === es && state.login) setTimeout(() => { if (state.es === es) startEvents(); }, 3000);
  });
}

function stopEvents() {
  if (state.es) { state.es.close(); state.es = null; }
}

/* ---- login / logout ---- */
async function onLogin(ev) {
  ev.preventDefault();
  const login = $('login').value.trim();
  const password = $('password').value;
  if (!/^[0-9]{1,19}$/.test(login) || !password) { showLogin(t('need_fields')); return; }
  const btn = $('login-submit');
  btn.disabled = true;
  const r = await api('POST', '/api/login', { login, password });
  btn.disabled = false;
  if (r.status === 200) {
    $('password').value = '';
    $('login-error').hidden = true;
    await showApp(r.data);
    const h = $('account-title');
    h.setAttribute('tabindex', '-1');
    h.focus();                                   // screen readers land on the account
    return;
  }
  let msg = t('unavailable');
  if (r.status === 401) msg = t('bad_login');
  else if (r.status === 429) msg = t('limited', r.retryAfter || 900);
  else if (r.status === 400) msg = t('need_fields');
  showLogin(msg);
}

async function onLogout() {
  await api('POST', '/api/logout');
  showLogin();
}

async function boot() {
  let lang = 'tr';
  try { lang = localStorage.getItem('kasa.lang') || 'tr'; } catch (e) { lang = 'tr'; }
  setLang(lang);
  $('lang-tr').addEventListener('click', () => setLang('tr'));
  $('lang-en').addEventListener('click', () => setLang('en'));
  $('logout').addEventListener('click', onLogout);
  $('login-form').addEventListener('submit', onLogin);
  const r = await api('GET', '/api/session');
  if (r.status === 200) await showApp(r.data); else showLogin();
}

document.addEventListener('DOMContentLoaded', boot);
