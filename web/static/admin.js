/* kasa admin panel: login with password and authenticator code, dashboard, held deposits and their
 * actions (with a confirmation that repeats amount and login), the withdrawal queue (totals per token
 * against the withdrawal wallet's balance, approve / reject / refund / transfer again, timeline),
 * search, deposit timeline, addresses, wallet balances, audit; pages reload as the journal commits (Server-Sent Events). Each page is one entry of PAGES (its tab button and section in admin.html carry its name).
 * Plain browser JavaScript (no build step, no external files); Turkish by default, English on demand.
 * Buttons an admin's role may not use are not shown; the server checks every call anyway. */
'use strict';

const I18N = {
  tr: {
    title: 'Kasa — Yönetim', logout: 'Çıkış', login_title: 'Yönetici girişi', name_label: 'Kullanıcı adı',
    password_label: 'Şifre', code_label: 'Doğrulama kodu (6 hane)', login_button: 'Giriş yap',
    password_title: 'Yeni şifre belirleyin',
    password_help: 'Tek kullanımlık şifreyle giriş yaptınız. Devam etmeden önce en az 12 karakterlik yeni bir şifre belirleyin.',
    pw_current: 'Şu anki şifre', pw_new: 'Yeni şifre', pw_button: 'Şifreyi değiştir',
    tab_dashboard: 'Özet', tab_held: 'Bekleyenler', tab_search: 'Arama', tab_audit: 'Denetim', tab_addresses: 'Adresler',
    addresses_title: 'Yatırma adresleri', f_addr: 'Adres veya hesap no', col_address: 'Adres', col_chain: 'Ağ / token',
    col_created: 'Oluşturma', tab_balances: 'Bakiyeler', balances_title: 'Cüzdan bakiyeleri', bal_refresh: "Cobo'dan yenile",
    col_total: 'Toplam', col_available: 'Kullanılabilir', col_pending: 'Bekleyen', col_locked: 'Kilitli', col_frozen: 'Dondurulmuş',
    bal_as_of: (ms) => `Cobo'dan alınan rakamlar: ${fmtTime(ms)}`, bal_reading: 'Cobo\'dan okunuyor…', bal_none: 'Henüz rakam yok.',
    bal_error: (e) => `Cobo ${fmtTime(e.error_ms)} itibarıyla yanıt vermedi (${e.error}). ${e.as_of_ms ? `Gösterilen rakamlar ${fmtTime(e.as_of_ms)} tarihli.` : 'Gösterilecek rakam yok.'}`,
    bal_sum: 'Adreslerin toplamı', bal_wallet: 'Cüzdan (Cobo)', bal_no_addresses: (w) => `Adres bazında rakam yok: ${w}`,
    dash_title: 'Özet', volume_title: 'Hesaba geçen tutar', col_token: 'Token', col_today: 'Bugün', col_week: 'Son 7 gün',
    held_title: 'Bekleyen yatırmalar', held_empty: 'Bekleyen yatırma yok.',
    search_title: 'Yatırma ara', f_q: 'İşlem, hash veya adres', f_state: 'Durum', f_login: 'Hesap no', f_from: 'Başlangıç',
    f_to: 'Bitiş', f_min: 'En az', f_max: 'En çok', f_actor: 'Kim', search_button: 'Ara', any_state: 'Hepsi',
    col_time: 'Zaman', col_state: 'Durum', col_amount: 'Tutar', col_login: 'Hesap', col_tx: 'İşlem',
    prev: 'Önceki', next: 'Sonraki', page: (p) => `Sayfa ${p.page} / ${Math.max(1, Math.ceil(p.total / p.limit))} (${p.total})`,
    detail_title: 'Yatırma ayrıntısı', from_node: (n) => `${n} düğümünden`, timeline_title: 'Zaman çizelgesi', audit_title: 'Denetim kaydı',
    cancel: 'Vazgeç', confirm: 'Onayla', reason: 'Gerekçe (zorunlu)', assign_login: 'Aktarılacak hesap no',
    a_retry: 'Yeniden dene', a_assign: 'Hesaba aktar', a_approve: 'Onayla', a_reject: 'Reddet',
    confirm_title: (a) => ({ retry: 'Yeniden denensin mi?', assign: 'Hesaba aktarılsın mı?', approve: 'Onaylansın mı?',
      reject: 'Reddedilsin mi?' })[a],
    confirm_text: (c) => `${c.amount} ${c.token} → hesap ${c.login || '—'}. Gerekçe: ${c.reason}`,
    need_reason: 'Gerekçe yazın.', need_login: 'Aktarılacak hesap numarasını yazın (yalnızca rakam).',
    bad_login: 'Kullanıcı adı, şifre veya kod yanlış.', limited: (s) => `Çok fazla hatalı deneme. ${mins(s)} dakika sonra tekrar deneyin.`,
    need_fields: 'Kullanıcı adı, şifre ve 6 haneli kod gerekli.', unavailable: 'Sunucuya ulaşılamıyor; tekrar deneyin.',
    stale: 'Yatırmalar güncel olmayabilir: MongoDB yanıt vermiyor, bu sunucunun bildikleri gösteriliyor.',
    expired: 'Oturumunuz sona erdi; lütfen tekrar giriş yapın.', done: (m) => `Tamam: ${m}`,
    st_PENDING: 'Onaylanıyor', st_RECEIVED: 'Alındı', st_LOCKED: 'İşleniyor', st_CREDITED: 'Hesaba geçti',
    st_NOTIFIED: 'Bildirildi', st_HELD: 'Bekliyor', st_REJECTED: 'Reddedildi',
    k_state: 'Durum', k_amount: 'Tutar', k_login: 'Hesap', k_address: 'Adres', k_hash: 'Hash', k_reason: 'Neden',
    k_credited: 'Hesaba geçen', k_ticket: 'MT5 işlem no', k_approvers: 'Onaylayanlar', k_id: 'İşlem',
    tab_withdrawals: 'Çekimler', wd_title: 'Çekimler', wd_totals_title: 'Token bazında toplamlar',
    col_waiting: 'Onay bekleyen', col_sending: 'Gönderiliyor', col_wd_held: 'Bekletilen', col_to_pay: 'Ödenecek',
    col_wallet: 'Çekim cüzdanında kullanılabilir', col_cover: 'Karşılar mı', col_paid: 'Ödenen (tamamlanan)', wd_enough: 'Yeterli',
    wd_short: (x) => `${x} eksik`, wd_unknown: 'Bilinmiyor',
    wd_wallet: (b) => `Ödemeler ${b.wallet_id} cüzdanından yapılır. ${b.as_of_ms ? `Cobo'dan alınan rakamlar: ${fmtTime(b.as_of_ms)}` : ''}`,
    wd_view: 'Göster', wv_waiting: 'Onay bekleyenler', wv_sending: 'Gönderilenler', wv_held: 'Bekletilenler',
    wv_completed: 'Tamamlananlar', wv_refunded: 'İade edilenler', wv_all: 'Hepsi',
    wd_empty: 'Bu görünümde çekim yok.', wdetail_title: 'Çekim ayrıntısı', wd_back: 'Çekimlere dön',
    a_refund: 'İade et', a_retransfer: 'Yeniden gönder', a_details: 'Ayrıntı',
    wd_confirm_title: (a) => ({ approve: 'Çekim onaylansın mı?', reject: 'Çekim reddedilsin mi? (tutar hesaba iade edilir)',
      refund: 'Tutar hesaba iade edilsin mi?', retransfer: 'Yeni bir istekle yeniden gönderilsin mi?' })[a],
    wd_confirm_text: (w) => `${w.amount} ${w.currency} (hesap ${w.login}) → ${w.token_amount} ${tokenShort(w.token)} → ${w.address}. Gerekçe: ${w.reason}`,
    wd_approvals: (w) => `Onay: ${w.approvals}/${w.approvals_needed}${w.approvers.length ? ` (${w.approvers.join(', ')})` : ''}`,
    wd_noted: 'Onayınız kaydedildi; ikinci bir onaylayıcı bekleniyor.',
    wst_REQUESTED: 'Alındı', wst_DEBITED: 'Onay bekliyor', wst_APPROVED: 'Onaylandı', wst_SENT: 'Gönderildi',
    wst_COMPLETED: 'Tamamlandı', wst_HELD: 'Bekletiliyor', wst_REJECTED: 'Reddedildi (MT5)', wst_REFUNDING: 'İade ediliyor',
    wst_REFUNDED: 'İade edildi',
    k_fee: 'Ücret', k_token_amount: 'Gönderilecek', k_request: 'Cobo istek no', k_cobo: 'Cobo durumu',
    k_debit: 'MT5 borç işlemi', k_refund: 'MT5 iade işlemi', k_created: 'Oluşturma', k_requester: 'İsteyen', k_chain: 'Ağ',
    role: (r) => ({ viewer: 'izleyici', operator: 'operatör', approver: 'onaylayıcı', treasurer: 'hazine sorumlusu',
      owner: 'sahip' })[r] || r,
  },
  en: {
    title: 'Kasa — Admin', logout: 'Log out', login_title: 'Admin login', name_label: 'User name',
    password_label: 'Password', code_label: 'Authenticator code (6 digits)', login_button: 'Log in',
    password_title: 'Set a new password',
    password_help: 'You logged in with a one-time password. Set a new password of at least 12 characters before you go on.',
    pw_current: 'Current password', pw_new: 'New password', pw_button: 'Change password',
    tab_dashboard: 'Dashboard', tab_held: 'Held', tab_search: 'Search', tab_audit: 'Audit', tab_addresses: 'Addresses',
    addresses_title: 'Deposit addresses', f_addr: 'Address or account', col_address: 'Address', col_chain: 'Chain / tokens',
    col_created: 'Created', tab_balances: 'Balances', balances_title: 'Wallet balances', bal_refresh: 'Refresh from Cobo',
    col_total: 'Total', col_available: 'Available', col_pending: 'Pending', col_locked: 'Locked', col_frozen: 'Frozen',
    bal_as_of: (ms) => `Figures from Cobo as of ${fmtTime(ms)}`, bal_reading: 'Reading from Cobo…', bal_none: 'No figures yet.',
    bal_error: (e) => `Cobo did not answer at ${fmtTime(e.error_ms)} (${e.error}). ${e.as_of_ms ? `The figures shown are from ${fmtTime(e.as_of_ms)}.` : 'There are no figures to show.'}`,
    bal_sum: 'Sum of the addresses', bal_wallet: 'Wallet (Cobo)', bal_no_addresses: (w) => `No per-address figures: ${w}`,
    dash_title: 'Dashboard', volume_title: 'Credited volume', col_token: 'Token', col_today: 'Today', col_week: 'Last 7 days',
    held_title: 'Held deposits', held_empty: 'No held deposits.',
    search_title: 'Search deposits', f_q: 'Transaction, hash or address', f_state: 'State', f_login: 'Account', f_from: 'From',
    f_to: 'To', f_min: 'Min', f_max: 'Max', f_actor: 'Who', search_button: 'Search', any_state: 'Any',
    col_time: 'Time', col_state: 'State', col_amount: 'Amount', col_login: 'Account', col_tx: 'Transaction',
    prev: 'Previous', next: 'Next', page: (p) => `Page ${p.page} of ${Math.max(1, Math.ceil(p.total / p.limit))} (${p.total})`,
    detail_title: 'Deposit detail', from_node: (n) => `from node ${n}`, timeline_title: 'Timeline', audit_title: 'Audit trail',
    cancel: 'Cancel', confirm: 'Confirm', reason: 'Reason (required)', assign_login: 'Account to credit',
    a_retry: 'Retry', a_assign: 'Assign', a_approve: 'Approve', a_reject: 'Reject',
    confirm_title: (a) => ({ retry: 'Retry this deposit?', assign: 'Assign this deposit?', approve: 'Approve this deposit?',
      reject: 'Reject this deposit?' })[a],
    confirm_text: (c) => `${c.amount} ${c.token} → account ${c.login || '—'}. Reason: ${c.reason}`,
    need_reason: 'Write a reason.', need_login: 'Write the account number to credit (digits only).',
    bad_login: 'Wrong user name, password or code.', limited: (s) => `Too many failed attempts. Try again in ${mins(s)} minutes.`,
    need_fields: 'User name, password and the 6-digit code are required.', unavailable: 'The server cannot be reached; try again.',
    stale: 'Deposits may be out of date: MongoDB does not answer, so this server\'s own records are shown.',
    expired: 'Your session has ended; please log in again.', done: (m) => `Done: ${m}`,
    st_PENDING: 'Confirming', st_RECEIVED: 'Received', st_LOCKED: 'Processing', st_CREDITED: 'Credited',
    st_NOTIFIED: 'Notified', st_HELD: 'Held', st_REJECTED: 'Rejected',
    k_state: 'State', k_amount: 'Amount', k_login: 'Account', k_address: 'Address', k_hash: 'Hash', k_reason: 'Reason',
    k_credited: 'Credited', k_ticket: 'MT5 ticket', k_approvers: 'Approved by', k_id: 'Transaction',
    tab_withdrawals: 'Withdrawals', wd_title: 'Withdrawals', wd_totals_title: 'Totals per token',
    col_waiting: 'Awaiting approval', col_sending: 'Being sent', col_wd_held: 'Held', col_to_pay: 'To pay',
    col_wallet: 'Available in the withdrawal wallet', col_cover: 'Covered', col_paid: 'Paid (completed)', wd_enough: 'Enough',
    wd_short: (x) => `${x} short`, wd_unknown: 'Unknown',
    wd_wallet: (b) => `Transfers are paid from wallet ${b.wallet_id}. ${b.as_of_ms ? `Figures from Cobo as of ${fmtTime(b.as_of_ms)}` : ''}`,
    wd_view: 'Show', wv_waiting: 'Awaiting approval', wv_sending: 'Sent', wv_held: 'Held', wv_completed: 'Completed',
    wv_refunded: 'Refunded', wv_all: 'All',
    wd_empty: 'No withdrawals in this view.', wdetail_title: 'Withdrawal detail', wd_back: 'Back to withdrawals',
    a_refund: 'Refund', a_retransfer: 'Transfer again', a_details: 'Details',
    wd_confirm_title: (a) => ({ approve: 'Approve this withdrawal?', reject: 'Reject this withdrawal? (the amount goes back to the account)',
      refund: 'Give the amount back to the account?', retransfer: 'Transfer again under a new request?' })[a],
    wd_confirm_text: (w) => `${w.amount} ${w.currency} (account ${w.login}) → ${w.token_amount} ${tokenShort(w.token)} → ${w.address}. Reason: ${w.reason}`,
    wd_approvals: (w) => `Approvals: ${w.approvals}/${w.approvals_needed}${w.approvers.length ? ` (${w.approvers.join(', ')})` : ''}`,
    wd_noted: 'Your approval is recorded; a second approver is needed.',
    wst_REQUESTED: 'Requested', wst_DEBITED: 'Awaiting approval', wst_APPROVED: 'Approved', wst_SENT: 'Sent',
    wst_COMPLETED: 'Completed', wst_HELD: 'Held', wst_REJECTED: 'Rejected (MT5)', wst_REFUNDING: 'Refunding',
    wst_REFUNDED: 'Refunded',
    k_fee: 'Fee', k_token_amount: 'To send', k_request: 'Cobo request id', k_cobo: 'Cobo status',
    k_debit: 'MT5 debit ticket', k_refund: 'MT5 refund ticket', k_created: 'Created', k_requester: 'Requested by', k_chain: 'Chain',
    role: (r) => r,
  },
};

const STATES = ['PENDING', 'RECEIVED', 'LOCKED', 'CREDITED', 'NOTIFIED', 'HELD', 'REJECTED'];
const ACTION_NEEDS = { retry: 'deposit.retry', assign: 'deposit.assign', approve: 'deposit.approve', reject: 'deposit.reject' };
/* The withdrawal queue's views: name -> the states it lists (GET /api/admin/withdrawals?state=). */
const WD_VIEWS = { waiting: 'DEBITED', sending: 'APPROVED,SENT', held: 'HELD', completed: 'COMPLETED',
  refunded: 'REFUNDING,REFUNDED,REJECTED', all: '' };
/* Which withdrawal actions each state offers (the server decides again, and says why it refuses). */
const WD_ACTIONS = { DEBITED: ['approve', 'reject'], HELD: ['refund', 'retransfer'] };
const state = { lang: 'tr', csrf: null, me: null, tab: 'dashboard', page: 1, filters: {}, held: [],
  addrPage: 1, addrQ: '', stream: null, soon: null, retry: null, wdView: 'waiting', wdLogin: '', wdetail: null };

/* The pages: name -> how to load it and which live events (GET /api/admin/events) make it reload
 * (a function of the event's type and data; a "resync" reloads any page that follows events). A
 * page is its entry here, a button .tab[data-tab=NAME] and a section #tab-NAME in admin.html. */
const ANY_CHANGE = (type) => type === 'deposit' || type === 'admin';
const PAGES = {
  dashboard: { load: () => loadSummary(), live: ANY_CHANGE },
  held: { load: () => loadHeld(), live: ANY_CHANGE },
  search: { load: () => loadSearch(), live: ANY_CHANGE },
  addresses: { load: () => loadAddresses(), live: (type) => type === 'link' },
  balances: { load: () => loadBalances(false), live: null },   // Cobo's figures: read on request
  detail: { load: () => (state.detail ? loadDetail(state.detail) : null),
    live: (type, d) => ANY_CHANGE(type) && d.id === state.detail },
  withdrawals: { load: () => loadWithdrawals(), live: (type, d) => type === 'withdrawal' || (type === 'admin' && isWdId(d.id)) },
  wdetail: { load: () => (state.wdetail ? loadWdetail(state.wdetail) : null),
    live: (type, d) => (type === 'withdrawal' || type === 'admin') && d.id === state.wdetail },
  audit: { load: () => loadAudit(), live: (type) => type === 'admin' },
};

function $(id) { return document.getElementById(id); }
function t(key, arg) { const v = I18N[state.lang][key]; return typeof v === 'function' ? v(arg) : v; }
function mins(s) { return Math.max(1, Math.ceil(s / 60)); }
function stText(s) { return I18N[state.lang]['st_' + s] || s; }
function may(what) { return !!(state.me && state.me.may.includes(what)); }
function fmtTime(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '—'; }
function isWdId(id) { return /^w[0-9a-f]{20}$/.test(id || ''); }
function tokenShort(token) { return (token || '').replace(/^[A-Z]+_/, '') || token; }
function announce(text) { const a = $('announce'); a.textContent = ''; setTimeout(() => { a.textContent = text; }, 30); }

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  if (method !== 'GET' && state.csrf) opt.headers['X-CSRF-Token'] = state.csrf;
  let res;
  try { res = await fetch(path, opt); } catch (e) { return { status: 0, data: { error: 'network' } }; }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401 && state.me && !path.endsWith('/login')) showLogin(t('expired'));
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
  fillStates();
  fillWdViews();
  $('held-list').textContent = '';
  $('wd-queue').textContent = ''; $('wd-one').textContent = '';
  if (state.me) { showWho(); refresh(); }
}

function fillStates() {
  const sel = $('f-state');
  const cur = sel.value;
  sel.textContent = '';
  const any = document.createElement('option');
  any.value = ''; any.textContent = t('any_state');
  sel.append(any);
  for (const s of STATES) { const o = document.createElement('option'); o.value = s; o.textContent = stText(s); sel.append(o); }
  sel.value = cur;
}

function fillWdViews() {
  const sel = $('wd-view');
  sel.textContent = '';
  for (const v of Object.keys(WD_VIEWS)) { const o = document.createElement('option'); o.value = v; o.textContent = t('wv_' + v); sel.append(o); }
  sel.value = state.wdView;
}

/* ---- views ---- */
function hideAll() { for (const v of ['login-view', 'password-view', 'app-view']) $(v).hidden = true; }

function showLogin(message) {
  closeStream();
  state.me = null; state.csrf = null;
  hideAll(); $('login-view').hidden = false; $('logout').hidden = true; $('who').textContent = '';
  const err = $('login-error');
  if (message) { err.textContent = message; err.hidden = false; } else { err.hidden = true; }
  $('name').focus();
}

function showWho() { $('who').textContent = `${state.me.name} (${t('role', state.me.role)})`; }

function showSession(s) {
  state.me = s; state.csrf = s.csrf;
  hideAll(); $('logout').hidden = false; showWho();
  if (s.must_change) { $('password-view').hidden = false; $('pw-current').focus(); return; }
  $('app-view').hidden = false;
  showTab(state.tab);
  openStream();   // the pages follow the journal
}

/* ---- live updates: the journal's commits over SSE ---- */
function openStream() {
  closeStream();
  const es = new EventSource('/api/admin/events');
  state.stream = es;
  const on = (type) => (ev) => {
    let d = {};
    try { d = JSON.parse(ev.data || '{}'); } catch (e) { /* a comment */ }
    const page = PAGES[state.tab];
    if (page.live && (type === 'resync' || page.live(type, d))) refreshSoon();
  };
  for (const type of ['deposit', 'withdrawal', 'admin', 'link', 'resync']) es.addEventListener(type, on(type));
  es.addEventListener('open', () => { document.body.dataset.live = 'on'; refreshSoon(); });   // (re)connected: catch up
  es.addEventListener('error', () => {
    document.body.dataset.live = 'off';
    if (es.readyState !== EventSource.CLOSED || state.stream !== es) return;   // the browser reconnects by itself
    // refused (the session ended, or the server is away): ask, then log in again or try later
    api('GET', '/api/admin/session').then((r) => {
      if (r.status === 200 && state.stream === es) state.retry = setTimeout(openStream, 5000);
    });
  });
}

function closeStream() {
  clearTimeout(state.retry);
  if (state.stream) state.stream.close();
  state.stream = null;
  document.body.dataset.live = 'off';
}

function refreshSoon() {   // events come in bursts (one deposit is several records): one reload each 250 ms
  if (state.soon) return;
  state.soon = setTimeout(() => { state.soon = null; refresh(); }, 250);
}

function showTab(tab) {
  state.tab = tab;
  for (const s of Object.keys(PAGES)) $('tab-' + s).hidden = s !== tab;
  document.querySelectorAll('.tab').forEach((b) => {
    if (b.dataset.tab === tab) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
  });
  refresh();
}

async function refresh() {
  if (!state.me || state.me.must_change) return;
  await PAGES[state.tab].load();
}

function pager(prefix, data, page) {
  $(prefix + 'page-info').textContent = t('page', data);
  $(prefix + 'prev').disabled = page <= 1;
  $(prefix + 'next').disabled = page * data.limit >= data.total;
}

/* Cluster mode: a deposit answer marked stale (MongoDB did not answer: one node's records) shows the
 * mark until an answer comes from the cluster again. */
function markStale(data) {
  if (data && typeof data.stale === 'boolean') $('stale').hidden = !data.stale;
  // The live stream carries this node's transitions only: another node's show by reading again.
  clearTimeout(state.clusterPoll);
  if (data && data.cluster) state.clusterPoll = setTimeout(refresh, 5000);
}

function cells(tr, values, monoAt) {
  values.forEach((x, i) => { const td = document.createElement('td'); td.textContent = x; if (monoAt.includes(i)) td.className = 'mono'; tr.append(td); });
}

/* ---- dashboard ---- */
async function loadSummary() {
  const r = await api('GET', '/api/admin/summary');
  if (r.status !== 200) return;
  markStale(r.data);
  const dl = $('state-counts');
  dl.textContent = '';
  for (const s of STATES) {
    const div = document.createElement('div');
    div.dataset.state = s;
    const dt = document.createElement('dt'); dt.textContent = stText(s);
    const dd = document.createElement('dd'); dd.textContent = String(r.data.states[s] || 0);
    div.append(dt, dd); dl.append(div);
  }
  const body = $('volume');
  body.textContent = '';
  for (const v of r.data.credited) {
    const tr = document.createElement('tr');
    for (const x of [v.token, v.today, v.week]) { const td = document.createElement('td'); td.textContent = x; tr.append(td); }
    body.append(tr);
  }
}

/* ---- held queue ---- */
async function loadHeld() {
  const r = await api('GET', '/api/admin/deposits?state=HELD&limit=100');
  if (r.status !== 200) return;
  markStale(r.data);
  state.held = r.data.deposits;
  $('held-empty').hidden = state.held.length > 0;
  syncList($('held-list'), 'li.held-item', state.held, heldItem, heldFacts);
}

/* Puts one li per item in list, in items' order: rows already there stay (what someone is typing in
 * them survives a refresh) and only get their facts again (update(li, item)); new ones are made with
 * make(item); rows whose item is gone are removed. Rows are keyed by data-id = item.id. */
function syncList(list, selector, items, make, update) {
  const have = {};
  list.querySelectorAll(selector).forEach((li) => { have[li.dataset.id] = li; });
  let prev = null;
  for (const d of items) {
    let li = have[d.id];
    if (li) { delete have[d.id]; update(li, d); } else li = make(d);
    if (prev ? prev.nextSibling !== li : list.firstChild !== li) list.insertBefore(li, prev ? prev.nextSibling : list.firstChild);
    prev = li;
  }
  for (const id of Object.keys(have)) have[id].remove();
}

function heldFacts(li, d) {
  li.heldData = d;
  li.querySelector('.h-amount').textContent = `${d.amount} ${tokenShort(d.token)}`;
  li.querySelector('.h-login').textContent = d.login ? `→ ${d.login}` : '';
  li.querySelector('.h-reason').textContent = d.reason + (d.approvals ? ` (${d.approvers.join(', ')})` : '');
  li.querySelector('.h-tx').textContent = d.id;
  li.querySelector('.h-address').textContent = d.address;
  li.querySelector('.h-hash').textContent = d.tx_hash || '';
}

function heldItem(d) {
  const li = $('held-item').content.firstElementChild.cloneNode(true);
  li.dataset.id = d.id;
  heldFacts(li, d);
  const reason = li.querySelector('.h-reason-input');
  const login = li.querySelector('.h-login-input');
  reason.id = 'reason-' + d.id; login.id = 'login-' + d.id;
  const rl = li.querySelector('.h-reason-label'), ll = li.querySelector('.h-login-label');
  rl.htmlFor = reason.id; rl.querySelector('span').textContent = t('reason');
  ll.htmlFor = login.id; ll.querySelector('span').textContent = t('assign_login');
  ll.hidden = !may('deposit.assign');
  let any = false;
  li.querySelectorAll('button.act').forEach((b) => {
    const a = b.dataset.action;
    b.textContent = t('a_' + a);
    if (!may(ACTION_NEEDS[a])) { b.remove(); return; }   // absent, not disabled
    any = true;
    b.addEventListener('click', () => act(li.heldData, a, reason.value.trim(), login.value.trim()));
  });
  if (!any) li.querySelector('.held-act').remove();
  return li;
}

function confirmDialog(title, text) {
  return new Promise((resolve) => {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-error').hidden = true;
    const done = () => { dlg.removeEventListener('close', done); resolve(dlg.returnValue === 'ok'); };
    dlg.addEventListener('close', done);
    dlg.returnValue = '';
    dlg.showModal();
  });
}

async function act(d, action, reason, login) {
  if (!reason) { announce(t('need_reason')); alertRow(d.id, t('need_reason')); return; }
  if (action === 'assign' && !/^[0-9]+$/.test(login)) { alertRow(d.id, t('need_login')); return; }
  const target = action === 'assign' ? login : d.login;
  const ok = await confirmDialog(t('confirm_title', action), t('confirm_text', { amount: d.amount, token: tokenShort(d.token), login: target, reason }));
  if (!ok) return;
  const body = { reason };
  if (action === 'assign') body.login = login;
  const r = await api('POST', `/api/admin/deposits/${encodeURIComponent(d.id)}/${action}`, body);
  if (r.status === 200) { announce(t('done', r.data.message)); alertRow(d.id, t('done', r.data.message), true); await loadHeld(); }
  else if (r.status === 202) { announce(r.data.message); alertRow(d.id, r.data.message, true); followCommand(d.id, r.data.command); }
  else alertRow(d.id, (r.data && r.data.error) || t('unavailable'));
}

/* Cluster mode: the node holding the deposit carries the action out; its outcome is shown once done. */
async function followCommand(id, command) {
  for (let i = 0; i < 120; i++) {
    await new Promise((ok) => setTimeout(ok, 1000));
    const r = await api('GET', '/api/admin/commands/' + encodeURIComponent(command));
    if (r.status === 200 && r.data.state === 'done') {
      announce(r.data.result); alertRow(id, r.data.result, r.data.ok);
      await loadHeld();
      return;
    }
  }
}

function alertRow(id, text, ok) {
  const li = $('tab-' + state.tab).querySelector(`li.held-item[data-id="${CSS.escape(id)}"]`);
  let p = li && li.querySelector('.row-msg');
  if (li && !p) { p = document.createElement('p'); p.setAttribute('role', 'alert'); li.append(p); }
  if (p) { p.className = 'row-msg ' + (ok ? 'muted' : 'error'); p.textContent = text; }
  if (!li) announce(text);
}

/* Each view's loads are numbered; the answer to a load that a newer one of the same view overtook is
 * dropped. Two loads can be in flight (a live event's reload, the view changed meanwhile) and their
 * answers arrive in any order: the older one must not overwrite what was asked last. newLoad(key)
 * returns a function that says whether this load is still the newest of its view. */
const loadSeq = {};
function newLoad(key) {
  const n = (loadSeq[key] = (loadSeq[key] || 0) + 1);
  return () => loadSeq[key] === n;
}

/* One page of a paged listing into a table: GET path?filters&page&limit=20; on failure the error
 * line says why. ids: { error, body, pager } (pager: the prefix of its prev/next/page-info ids). */
async function loadPaged(path, filters, page, ids, list, row) {
  const q = new URLSearchParams({ ...filters, page: String(page), limit: '20' });
  for (const [k, v] of [...q.entries()]) if (!v) q.delete(k);
  const current = newLoad(ids.body);
  const r = await api('GET', `${path}?${q.toString()}`);
  if (!current()) return;
  const err = $(ids.error);
  if (r.status !== 200) { err.textContent = (r.data && r.data.error) || t('unavailable'); err.hidden = false; return; }
  err.hidden = true;
  markStale(r.data);
  const body = $(ids.body);
  body.textContent = '';
  for (const item of r.data[list]) { const tr = document.createElement('tr'); row(tr, item); body.append(tr); }
  pager(ids.pager, r.data, page);
}

/* ---- search and detail ---- */
function loadSearch() {
  return loadPaged('/api/admin/deposits', state.filters, state.page, { error: 'search-error', body: 'results', pager: '' },
    'deposits', (tr, d) => {
      tr.dataset.id = d.id; tr.dataset.state = d.state; tr.tabIndex = 0;
      cells(tr, [fmtTime(d.created_ms), stText(d.state), `${d.amount} ${tokenShort(d.token)}`, d.login || '—', d.id], [4]);
      const open = () => { state.detail = d.id; showTab('detail'); };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    });
}

/* ---- addresses ---- */
function loadAddresses() {
  return loadPaged('/api/admin/addresses', { q: state.addrQ }, state.addrPage,
    { error: 'addr-error', body: 'addr-results', pager: 'addr-' }, 'addresses', (tr, a) => {
      tr.dataset.address = a.address;
      cells(tr, [a.address, String(a.login), (a.chain || '—') + (a.tokens.length ? ` (${a.tokens.join(', ')})` : ''),
        fmtTime(a.created_ms)], [0]);
    });
}

/* ---- wallet balances ---- */
async function loadBalances(fresh) {
  $('bal-refresh').disabled = true;
  let r = await api('GET', '/api/admin/balances' + (fresh ? '?fresh=1' : ''));
  if (r.status === 200 && r.data.reading && !fresh) {   // a reading has started: show it when it ends
    showBalances(r.data);
    r = await api('GET', '/api/admin/balances?fresh=1');
  }
  $('bal-refresh').disabled = false;
  const err = $('bal-error');
  if (r.status !== 200) { err.textContent = (r.data && r.data.error) || t('unavailable'); err.hidden = false; return; }
  showBalances(r.data);
}

function showBalances(b) {
  const err = $('bal-error');
  err.hidden = !b.error;
  if (b.error) err.textContent = t('bal_error', b);
  $('bal-status').textContent = b.reading && !b.as_of_ms ? t('bal_reading') : b.as_of_ms ? t('bal_as_of', b.as_of_ms) : t('bal_none');
  const box = $('bal-tokens');
  box.textContent = '';
  const figures = (x) => [x.total, x.available, x.pending, x.locked, x.frozen];
  for (const tk of b.tokens) {
    const div = $('bal-token').content.firstElementChild.cloneNode(true);
    div.dataset.token = tk.token_id;
    div.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    div.querySelector('.b-token').textContent = tk.token_id;
    const note = div.querySelector('.b-note');
    note.hidden = !tk.address_error;
    if (tk.address_error) note.textContent = t('bal_no_addresses', tk.address_error);
    const rows = div.querySelector('.b-rows');
    for (const a of tk.addresses) {
      const tr = document.createElement('tr');
      tr.dataset.address = a.address;
      cells(tr, [a.address, a.login ? String(a.login) : '—', ...figures(a.balance)], [0]);
      rows.append(tr);
    }
    const foot = div.querySelector('.b-foot');
    for (const [cls, label, x] of [['sum', 'bal_sum', tk.address_sum], ['wallet', 'bal_wallet', tk.balance]]) {
      const tr = document.createElement('tr');
      tr.className = 'b-' + cls;
      cells(tr, [t(label), '', ...figures(x)], []);
      foot.append(tr);
    }
    div.querySelectorAll('.b-rows td:nth-child(n+3), .b-foot td:nth-child(n+3)').forEach((td) => td.classList.add('num'));
    box.append(div);
  }
}

async function loadDetail(id) {
  const current = newLoad('detail');
  const r = await api('GET', '/api/admin/deposits/' + encodeURIComponent(id));
  if (!current() || r.status !== 200) return;
  markStale(r.data);
  const d = r.data.deposit;
  const rows = [['k_id', d.id], ['k_state', stText(d.state)], ['k_amount', `${d.amount} ${d.token}`], ['k_login', d.login || '—'],
    ['k_address', d.address], ['k_hash', d.tx_hash || '—'], ['k_reason', d.reason || '—'], ['k_credited', d.credited || '—'],
    ['k_ticket', d.ticket || '—'], ['k_approvers', d.approvers.join(', ') || '—']];
  kvList($('detail'), rows);
  timelineInto($('timeline'), r.data);
}

/* A detail's timeline into ol: this node's records and, in cluster mode, the other nodes' (each
 * marked with its node), in time order. */
function timelineInto(ol, data) {
  ol.textContent = '';
  const recs = data.timeline.concat(data.others || []);
  recs.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  for (const rec of recs) ol.append(recordItem(rec));
}

/* A detail's facts into dl: rows of [i18n key, value]; each dd carries its key (data-key). */
function kvList(dl, rows) {
  dl.textContent = '';
  for (const [k, v] of rows) {
    const dt = document.createElement('dt'); dt.textContent = t(k);
    const dd = document.createElement('dd'); dd.textContent = String(v); dd.dataset.key = k;
    dl.append(dt, dd);
  }
}

function recordItem(rec) {
  const li = document.createElement('li');
  li.dataset.kind = rec.kind;
  const parts = [rec.time.replace('T', ' ').slice(0, 19), rec.kind === 'DEPOSIT' ? `${rec.from} → ${rec.to}`
    : rec.kind === 'WITHDRAWAL' ? `${rec.wfrom} → ${rec.wto}` : rec.kind];
  for (const k of ['wevent', 'actor', 'action', 'origin', 'login', 'ticket', 'ref', 'credit', 'remainder', 'request_id', 'status',
    'tx_hash', 'reason']) {
    if (rec[k] !== undefined && rec[k] !== '') parts.push(`${k}: ${rec[k]}`);
  }
  if (rec.node) { li.dataset.node = rec.node; parts.push(t('from_node', rec.node)); }
  li.textContent = parts.join(' · ');
  return li;
}

/* ---- withdrawals ---- */

/* An exact decimal string as a BigInt of 10^-18 units (no floating point on money); null if not one. */
function atto(text) {
  const m = /^([0-9]+)(?:\.([0-9]{1,18}))?$/.exec(String(text || ''));
  return m ? BigInt(m[1]) * 10n ** 18n + BigInt((m[2] || '').padEnd(18, '0')) : null;
}
function attoText(v) {
  const frac = (v % 10n ** 18n).toString().padStart(18, '0').replace(/0+$/, '');
  return (v / 10n ** 18n).toString() + (frac ? '.' + frac : '');
}

async function loadWithdrawals() {
  const q = new URLSearchParams({ state: WD_VIEWS[state.wdView] || '', login: state.wdLogin });
  for (const [k, v] of [...q.entries()]) if (!v) q.delete(k);
  const current = newLoad('withdrawals');
  const [r, b] = await Promise.all([api('GET', '/api/admin/withdrawals?' + q.toString()), api('GET', '/api/admin/balances')]);
  if (!current()) return;
  const err = $('wd-error');
  if (r.status !== 200) { err.textContent = (r.data && r.data.error) || t('unavailable'); err.hidden = false; return; }
  err.hidden = true;
  state.wdMay = r.data.may_decide;
  $('wd-empty').hidden = r.data.withdrawals.length > 0;
  syncList($('wd-queue'), 'li.wd-item', r.data.withdrawals, wdItem, wdFacts);
  state.wdTotals = r.data.totals;
  showWdTotals(b.status === 200 ? b.data : null, b.status === 200 ? null : (b.data && b.data.error) || t('unavailable'));
  if (b.status === 200 && b.data.reading && !b.data.as_of_ms) await loadWdBalances();
}

async function loadWdBalances() {   // a fresh reading of Cobo's figures, shown when it ends
  $('wd-bal-refresh').disabled = true;
  const b = await api('GET', '/api/admin/balances?fresh=1');
  $('wd-bal-refresh').disabled = false;
  showWdTotals(b.status === 200 ? b.data : null, b.status === 200 ? null : (b.data && b.data.error) || t('unavailable'));
}

/* The totals per token beside what the withdrawal wallet has available of it, and whether it covers them. */
function showWdTotals(bal, error) {
  const ww = bal && bal.withdraw_wallet;
  const err = $('wd-bal-error');
  const why = error || (bal && bal.error ? t('bal_error', bal) : null) || (ww && ww.error);
  err.hidden = !why;
  if (why) err.textContent = why;
  $('wd-wallet').textContent = ww ? t('wd_wallet', { wallet_id: ww.wallet_id, as_of_ms: bal.as_of_ms }) : '';
  const body = $('wd-totals');
  body.textContent = '';
  for (const x of state.wdTotals || []) {
    const have = ww && ww.tokens.find((k) => k.token_id === x.token);
    const avail = have ? atto(have.balance.available) : (ww && !ww.error && bal.as_of_ms ? 0n : null);
    const need = atto(x.to_pay);
    let cover = t('wd_unknown');
    if (avail !== null && need !== null) cover = avail >= need ? t('wd_enough') : t('wd_short', attoText(need - avail));
    const tr = document.createElement('tr');
    tr.dataset.token = x.token;
    if (avail !== null && need !== null && avail < need) tr.className = 'short';
    const fig = (g) => `${g.token_amount} (${g.count})`;
    cells(tr, [x.token, fig(x.waiting), fig(x.sending), fig(x.held), x.to_pay, avail === null ? '—' : attoText(avail), cover,
      fig(x.completed)], []);
    tr.querySelectorAll('td:nth-child(n+2):nth-child(-n+6), td:nth-child(8)').forEach((td) => td.classList.add('num'));
    body.append(tr);
  }
}

function wdFacts(li, w) {
  li.wd = w;
  li.dataset.state = w.state;
  li.querySelector('.w-amount').textContent = `${w.amount} ${w.currency} → ${w.token_amount} ${tokenShort(w.token)}`;
  li.querySelector('.w-login').textContent = `· ${w.login}`;
  const st = li.querySelector('.w-state');
  st.textContent = t('wst_' + w.state) || w.state;
  li.querySelector('.w-approvals').textContent = w.state === 'DEBITED' ? t('wd_approvals', w) : '';
  li.querySelector('.w-reason').textContent = w.reason || '';
  li.querySelector('.w-id').textContent = w.id;
  li.querySelector('.w-address').textContent = `${w.chain} ${w.address}`;
  li.querySelector('.w-hash').textContent = w.tx_hash ? `· ${w.tx_hash}` : '';
  const offered = WD_ACTIONS[w.state] || [];
  let any = false;
  li.querySelectorAll('button.act').forEach((b) => { b.hidden = !offered.includes(b.dataset.action) || !mayWd(); any = any || !b.hidden; });
  li.querySelector('.w-reason-label').hidden = !any;
}

function wdItem(w) {
  const li = $('wd-item').content.firstElementChild.cloneNode(true);
  li.dataset.id = w.id;
  const reason = li.querySelector('.w-reason-input');
  reason.id = 'wreason-' + w.id + (state.tab === 'wdetail' ? '-d' : '');
  const rl = li.querySelector('.w-reason-label');
  rl.htmlFor = reason.id; rl.querySelector('span').textContent = t('reason');
  li.querySelectorAll('button.act').forEach((b) => {
    b.textContent = t('a_' + b.dataset.action);
    b.addEventListener('click', () => wdAct(li, b.dataset.action, reason.value.trim()));
  });
  const det = li.querySelector('button.details');
  det.textContent = t('a_details');
  det.addEventListener('click', () => { state.wdetail = li.wd.id; showTab('wdetail'); });
  wdFacts(li, w);
  return li;
}

/* Whether the admin's role may act on withdrawals: the server says so in its answers (may_decide). */
function mayWd() { return !!state.wdMay; }

async function wdAct(li, action, reason) {
  const w = li.wd;
  if (!reason) { alertRow(w.id, t('need_reason')); return; }
  const ok = await confirmDialog(t('wd_confirm_title', action), t('wd_confirm_text', { ...w, reason }));
  if (!ok) return;
  const r = await api('POST', `/api/admin/withdrawals/${encodeURIComponent(w.id)}/${action}`, { reason });
  if (r.status === 200) {
    const now = r.data.withdrawal;
    const text = r.data.noted ? t('wd_noted') : t('done', now ? t('wst_' + now.state) : action);
    announce(text);
    li.querySelector('.w-reason-input').value = '';
    if (now) wdFacts(li, now);
    alertRow(w.id, text, true);
    refreshSoon();
  } else alertRow(w.id, (r.data && r.data.error) || t('unavailable'));
}

async function loadWdetail(id) {
  const current = newLoad('wdetail');
  const r = await api('GET', '/api/admin/withdrawals/' + encodeURIComponent(id));
  if (!current() || r.status !== 200) return;
  state.wdMay = r.data.may_decide;
  const w = r.data.withdrawal;
  syncList($('wd-one'), 'li.wd-item', [w], wdItem, wdFacts);
  $('wd-one').querySelectorAll('button.details').forEach((b) => { b.hidden = true; });
  const rows = [['k_id', w.id], ['k_state', t('wst_' + w.state)], ['k_login', w.login], ['k_amount', `${w.amount} ${w.currency}`],
    ['k_fee', `${w.fee} ${w.currency}`], ['k_token_amount', `${w.token_amount} ${w.token}`], ['k_chain', w.chain],
    ['k_address', w.address], ['k_requester', w.requester || '—'], ['k_approvers', `${w.approvers.join(', ') || '—'} (${w.approvals}/${w.approvals_needed})`],
    ['k_request', w.request_id || '—'], ['k_cobo', w.cobo_status || '—'], ['k_hash', w.tx_hash || '—'],
    ['k_debit', w.debit_ticket || '—'], ['k_refund', w.refund_ticket || '—'], ['k_reason', w.reason || '—'],
    ['k_created', fmtTime(w.created_ms)]];
  kvList($('wdetail'), rows);
  timelineInto($('wtimeline'), r.data);
}

/* ---- audit ---- */
async function loadAudit() {
  const actor = $('a-actor').value.trim();
  const current = newLoad('audit');
  const r = await api('GET', '/api/admin/audit?limit=100' + (actor ? '&actor=' + encodeURIComponent(actor) : ''));
  if (!current() || r.status !== 200) return;
  const ol = $('audit');
  ol.textContent = '';
  for (const rec of r.data.audit) {
    const li = recordItem(rec);
    if (rec.tx_id) li.textContent += ` · ${rec.tx_id}`;
    if (rec.admin) li.textContent += ` · ${rec.admin}`;
    ol.append(li);
  }
}

/* ---- forms ---- */
async function onLogin(ev) {
  ev.preventDefault();
  const name = $('name').value.trim(), password = $('password').value, code = $('code').value.trim();
  if (!name || !password || !/^[0-9]{6}$/.test(code)) { showLogin(t('need_fields')); return; }
  $('login-submit').disabled = true;
  const r = await api('POST', '/api/admin/login', { name, password, code });
  $('login-submit').disabled = false;
  $('password').value = ''; $('code').value = '';
  if (r.status === 200) { showSession(r.data); return; }
  if (r.status === 429) showLogin(t('limited', r.retryAfter));
  else if (r.status === 401) showLogin(t('bad_login'));
  else showLogin(t('unavailable'));
}

async function onPassword(ev) {
  ev.preventDefault();
  const r = await api('POST', '/api/admin/password', { current: $('pw-current').value, password: $('pw-new').value });
  $('pw-current').value = ''; $('pw-new').value = '';
  if (r.status === 200) {
    const s = await api('GET', '/api/admin/session');
    if (s.status === 200) showSession(s.data);
    return;
  }
  const err = $('password-error');
  err.textContent = (r.data && r.data.error) || t('unavailable');
  err.hidden = false;
}

function onSearch(ev) {
  ev.preventDefault();
  state.filters = { q: $('f-q').value.trim(), state: $('f-state').value, login: $('f-login').value.trim(),
    from: $('f-from').value, to: $('f-to').value, min: $('f-min').value.trim(), max: $('f-max').value.trim() };
  state.page = 1;
  loadSearch();
}

async function onLogout() {
  closeStream();
  await api('POST', '/api/admin/logout', {});
  showLogin();
}

async function boot() {
  let lang = 'tr';
  try { lang = localStorage.getItem('kasa.lang') || 'tr'; } catch (e) { /* private mode */ }
  setLang(lang);
  $('lang-tr').addEventListener('click', () => setLang('tr'));
  $('lang-en').addEventListener('click', () => setLang('en'));
  $('login-form').addEventListener('submit', onLogin);
  $('password-form').addEventListener('submit', onPassword);
  $('search-form').addEventListener('submit', onSearch);
  $('audit-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadAudit(); });
  $('addr-form').addEventListener('submit', (ev) => { ev.preventDefault(); state.addrQ = $('addr-q').value.trim(); state.addrPage = 1; loadAddresses(); });
  $('addr-prev').addEventListener('click', () => { state.addrPage = Math.max(1, state.addrPage - 1); loadAddresses(); });
  $('addr-next').addEventListener('click', () => { state.addrPage++; loadAddresses(); });
  $('bal-refresh').addEventListener('click', () => loadBalances(true));
  $('wd-bal-refresh').addEventListener('click', loadWdBalances);
  $('wd-filter').addEventListener('submit', (ev) => { ev.preventDefault(); state.wdView = $('wd-view').value; state.wdLogin = $('wd-login').value.trim(); loadWithdrawals(); });
  $('wd-view').addEventListener('change', () => { state.wdView = $('wd-view').value; loadWithdrawals(); });
  $('wd-back').addEventListener('click', () => showTab('withdrawals'));
  $('logout').addEventListener('click', onLogout);
  $('prev').addEventListener('click', () => { state.page = Math.max(1, state.page - 1); loadSearch(); });
  $('next').addEventListener('click', () => { state.page++; loadSearch(); });
  document.querySelectorAll('.tab').forEach((b) => b.addEventListener('click', () => showTab(b.dataset.tab)));
  const r = await api('GET', '/api/admin/session');
  if (r.status === 200) showSession(r.data); else showLogin();
}

document.addEventListener('DOMContentLoaded', boot);
