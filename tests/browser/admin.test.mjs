// admin.test.mjs — the admin panel in a real browser (system Chromium via playwright-core), in
// Turkish and in English, at 360x740 and 1280x800. Each run: a new approver logs in with the
// one-time password and a TOTP code computed here, sets a new password, sees the dashboard, assigns
// an unlinked held deposit (the confirmation repeats amount and login) and sees it credited in the
// MT5 simulator, approves one over the auto-credit limit, rejects one, searches and opens a
// timeline, reads the audit. Then a viewer: no action buttons, and its API calls get 403.
// Screenshots go to $KASA_TEST_OUT/screenshots. Ends with the line "N passed, N failed".
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { KASA_BIN, OUT, SHOTS, WALLET_ID, addAdmin, adminFirstLogin, adminLogin as login, check, checkNoOverflow,
  openLogin, openPage, post, runBrowser, startKasa, test } from './support.mjs';

const WORK = path.join(OUT, `browser-admin-${process.pid}`);

async function heldDeposit(env, address, amount) {
  const dep = await post(env.cobo + '/sim/deposit', { address, amount, token_id: 'TRON_USDT', chain_id: 'TRON',
    wallet_id: WALLET_ID, confirmations: 1 });
  return dep.transaction_id;
}

// 1 when the MT5 simulator holds a deal of amount on login (waits up to 10 s), else throws with the deals.
async function hasDeal(env, login, amount) {
  let text = '';
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`${env.mt5}/sim/deals?login=${login}`);
    text = await r.text();
    if (JSON.parse(text).deals.some((d) => Number(d.amount) === amount)) return true;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no deal of ${amount} on ${login}: ${text}`);
}

const TEXT = {
  tr: { login: 'Giriş yap', newpw: 'Yeni şifre belirleyin', held: 'Bekleyenler', assign: 'Hesaba aktar', approve: 'Onayla',
        reject: 'Reddet', search: 'Arama', credited: 'Bildirildi', rejected: 'Reddedildi', wrong: 'yanlış' },
  en: { login: 'Log in', newpw: 'Set a new password', held: 'Held', assign: 'Assign', approve: 'Approve',
        reject: 'Reject', search: 'Search', credited: 'Notified', rejected: 'Rejected', wrong: 'Wrong' },
};

async function waitState(env, page, id, states) {
  await page.waitForFunction(async ([u, i, s]) => {
    const r = await fetch(`/api/admin/deposits/${i}`);
    return r.ok && s.includes((await r.json()).deposit.state);
  }, [env.kasa, id, states], { timeout: 30000, polling: 300 });
}

async function act(page, id, action, reason, assignTo) {
  const row = page.locator(`li.held-item[data-id="${id}"]`);
  await row.waitFor({ timeout: 20000 });
  await row.locator('.h-reason-input').fill(reason);
  if (assignTo) await row.locator('.h-login-input').fill(assignTo);
  await row.locator(`button[data-action="${action}"]`).click();
  await page.waitForSelector('#confirm[open]');
  return row;
}

async function run(browser, env, lang, viewport, n) {
  const tag = `admin-${lang}-${viewport.width}x${viewport.height}`;
  const T = TEXT[lang];
  const admin = addAdmin(env, `approver${n}`, 'approver');
  const { context, page, errors } = await openPage(browser, viewport, lang);
  try {
    await openLogin(page, env.kasa + '/admin.html', lang);
    check(await page.textContent('#login-submit') === T.login, 'login button text');
    await login(page, admin, 'not-the-password');
    await page.waitForSelector('#login-error:not([hidden])');
    check((await page.textContent('#login-error')).includes(T.wrong), 'wrong-login message');
    await page.screenshot({ path: path.join(SHOTS, `${tag}-0-login.png`), fullPage: true });
    await login(page, admin);
    await page.waitForSelector('#password-view:not([hidden])');
    check(await page.textContent('#password-title') === T.newpw, 'the first login asks for a new password');
    await page.fill('#pw-current', admin.password);
    admin.password = `${admin.name}-a-new-password`;
    await page.fill('#pw-new', admin.password);
    await page.click('#password-submit');
    await page.waitForSelector('#app-view:not([hidden])');
    await page.waitForSelector('#state-counts div[data-state="HELD"]');
    await page.screenshot({ path: path.join(SHOTS, `${tag}-1-dashboard.png`), fullPage: true });

    // held: an unlinked deposit assigned, one over the limit approved, one rejected
    const addr = `TBrowserAdmin${n}Nobody111111111111`.slice(0, 34);
    const small = await heldDeposit(env, addr, String(40 + n));
    const big = await heldDeposit(env, addr, String(2000 + n));
    const bad = await heldDeposit(env, addr, String(60 + n));
    await page.click('.tab[data-tab="held"]');
    const row = await act(page, small, 'assign', 'proof of address received', '100002');
    const text = await page.textContent('#confirm-text');
    check(text.includes(`${40 + n} USDT`) && text.includes('100002'), `the confirmation repeats amount and login (${text})`);
    await page.screenshot({ path: path.join(SHOTS, `${tag}-2-confirm.png`), fullPage: true });
    await page.click('#confirm-ok');
    await row.waitFor({ state: 'detached', timeout: 20000 });
    await waitState(env, page, small, ['NOTIFIED', 'CREDITED']);
    check(await hasDeal(env, 100002, 40 + n - 0.5), 'the MT5 simulator has the credit');

    const bigRow = page.locator(`li.held-item[data-id="${big}"]`);
    await bigRow.waitFor({ timeout: 20000 });
    // the big one is assigned to its address's login first (nobody's), then approved
    await act(page, big, 'assign', 'client account', '100003');
    await page.click('#confirm-ok');
    await page.waitForFunction((id) => {
      const li = document.querySelector(`li.held-item[data-id="${id}"]`);
      return li && li.querySelector('.h-reason').textContent.includes('approver');
    }, big, { timeout: 30000 });
    await act(page, big, 'approve', 'large deposit checked on chain');
    check((await page.textContent('#confirm-text')).includes(`${2000 + n} USDT`), 'approval confirmation shows the amount');
    await page.click('#confirm-ok');
    await waitState(env, page, big, ['NOTIFIED', 'CREDITED']);
    check(await hasDeal(env, 100003, 2000 + n - 0.5), 'the approved deposit is credited');

    await act(page, bad, 'reject', 'sender is sanctioned');
    await page.click('#confirm-ok');
    await waitState(env, page, bad, ['REJECTED']);
    await page.screenshot({ path: path.join(SHOTS, `${tag}-3-held.png`), fullPage: true });

    // search and timeline
    await page.click('.tab[data-tab="search"]');
    await page.fill('#f-q', big);
    await page.click('#search-submit');
    const res = page.locator(`#results tr[data-id="${big}"]`);
    await res.waitFor({ timeout: 10000 });
    check((await res.textContent()).includes(T.credited), 'search shows the state');
    await res.click();
    await page.waitForSelector('#timeline li[data-kind="ADMIN_ACTION"]');
    const tl = await page.textContent('#timeline');
    check(tl.includes(`admin:${admin.name}`) && tl.includes('large deposit checked on chain') && tl.includes('HELD → RECEIVED'),
      'the timeline names who, why and the transitions');
    await page.screenshot({ path: path.join(SHOTS, `${tag}-4-timeline.png`), fullPage: true });
    // cluster mode: the records other nodes journaled of it ("others", read from MongoDB) join the
    // timeline in time order, each marked with its node (given here to the answer on its way to the page)
    await page.route(`**/api/admin/deposits/${big}`, async (route) => {
      const response = await route.fetch();
      const json = await response.json();
      const other = { lsn: 9, v: json.timeline[0].v, kind: 'ADMIN_ACTION', time: '2001-01-01T00:00:00.000Z', tx_id: big, actor: 'kasa:cluster',
        action: 'claim', origin: 'node:node-2', reason: 'held by node node-2', node: 'node-2' };
      await route.fulfill({ response, json: { ...json, others: [other] } });
    });
    await page.click('.tab[data-tab="search"]');
    await res.click();
    await page.waitForSelector('#timeline li[data-node="node-2"]');
    const marks = await page.$$eval('#timeline li', (lis) => lis.map((li) => li.dataset.node || ''));
    const marked = await page.textContent('#timeline li[data-node="node-2"]');
    check(marks.indexOf('node-2') === 0 && marks.length > 1 && marks.filter((m) => m).length === 1,
      `the other node's (older) record stands first: time order (${marks.join(',')})`);
    check(marked.includes('held by node node-2') && (marked.includes('from node node-2') || marked.includes('node-2 düğümünden')),
      `the other node's record is marked with its node (${marked})`);
    await page.unroute(`**/api/admin/deposits/${big}`);
    await page.click('.tab[data-tab="audit"]');
    await page.waitForSelector('#audit li');
    check((await page.textContent('#audit')).includes('sender is sanctioned'), 'the audit shows the reject');
    await checkNoOverflow(page);
    check(errors.length === 0, `no page errors: ${errors.join('; ')}`);
  } finally {
    await context.close();
  }
}

async function viewer(browser, env) {
  const v = addAdmin(env, 'watcher', 'viewer');
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    const id = await heldDeposit(env, 'TBrowserAdminViewerNobody111111111', '33');
    await page.goto(env.kasa + '/admin.html');
    await adminFirstLogin(page, v);
    await page.click('.tab[data-tab="held"]');
    const row = page.locator(`li.held-item[data-id="${id}"]`);
    await row.waitFor({ timeout: 20000 });
    check(await row.locator('button').count() === 0, 'a viewer sees no action buttons');
    const status = await page.evaluate(async (i) => {
      const s = await (await fetch('/api/admin/session')).json();
      const r = await fetch(`/api/admin/deposits/${i}/retry`, { method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf }, body: JSON.stringify({ reason: 'try' }) });
      return r.status;
    }, id);
    check(status === 403, `a viewer's action gets 403 (${status})`);
    await page.screenshot({ path: path.join(SHOTS, 'admin-viewer.png'), fullPage: true });
  } finally {
    await context.close();
  }
}

// What a viewer reads: addresses searched by login and by a part of an address, the wallet balances
// with totals, a deposit appearing live (SSE) on the held page; at logout the stream ends.
async function live(browser, env, lang, viewport, n) {
  const tag = `admin-live-${lang}-${viewport.width}x${viewport.height}`;
  const v = addAdmin(env, `reader${n}`, 'viewer');
  const addr = `TBrowserLive${n}Address1111111111111`.slice(0, 34);
  execFileSync(KASA_BIN, ['wallet', 'link', addr, String(100003 + n), '--chain', 'TRON', '--config', env.config]);
  const { context, page, errors } = await openPage(browser, viewport, lang);
  try {
    await openLogin(page, env.kasa + '/admin.html', lang);
    await adminFirstLogin(page, v);
    await page.click('.tab[data-tab="addresses"]');
    check(await page.textContent('#addresses-title') === LIVE[lang].addresses, 'addresses title');
    await page.fill('#addr-q', String(100003 + n));
    await page.click('#addr-submit');
    const row = page.locator(`#addr-results tr[data-address="${addr}"]`);
    await row.waitFor({ timeout: 10000 });
    check((await row.textContent()).includes('TRON_USDT'), 'the address row names its chain and tokens');
    await page.fill('#addr-q', addr.slice(5, 20));
    await page.click('#addr-submit');
    await page.waitForFunction((a) => document.querySelectorAll('#addr-results tr').length === 1 &&
      document.querySelector('#addr-results tr').dataset.address === a, addr, { timeout: 10000 });
    await checkNoOverflow(page);
    await page.screenshot({ path: path.join(SHOTS, `${tag}-addresses.png`), fullPage: true });

    // wallet balances: the address's exact figure, and the addresses' sum equal to Cobo's wallet figure
    await heldDeposit(env, addr, '2');
    await heldDeposit(env, addr, '0.000001');
    await page.click('.tab[data-tab="balances"]');
    await page.click('#bal-refresh');
    const brow = page.locator(`.bal-token[data-token="TRON_USDT"] tr[data-address="${addr}"]`);
    await brow.waitFor({ timeout: 15000 });
    check((await brow.textContent()).includes('2.000001') && (await brow.textContent()).includes(String(100003 + n)),
      'the address row shows its exact balance and login');
    const sums = await page.$$eval('.bal-token[data-token="TRON_USDT"] tfoot tr', (trs) => trs.map((tr) => tr.children[2].textContent));
    check(sums.length === 2 && sums[0] === sums[1], `the addresses' sum equals the wallet's figure (${sums})`);
    check((await page.textContent('#bal-status')).includes(LIVE[lang].asOf), 'the figures say when they were read');
    await checkNoOverflow(page);
    await page.screenshot({ path: path.join(SHOTS, `${tag}-balances.png`), fullPage: true });

    // live: a deposit committed while the held page is open appears without a reload (SSE, no polling)
    await page.click('.tab[data-tab="held"]');
    await page.waitForSelector('body[data-live="on"]', { timeout: 10000 });
    await page.evaluate(() => { window.__same = 1; });
    const id = await heldDeposit(env, `TBrowserLiveNobody${n}111111111111111`.slice(0, 34), String(70 + n));
    await page.locator(`li.held-item[data-id="${id}"]`).waitFor({ timeout: 10000 });
    check(await page.evaluate(() => window.__same === 1), 'the page was not reloaded');
    await page.screenshot({ path: path.join(SHOTS, `${tag}-live.png`), fullPage: true });
    // logout: the stream is closed, and the server no longer opens one for this browser
    await page.click('#logout');
    await page.waitForSelector('#login-form', { state: 'visible' });
    check(await page.evaluate(() => document.body.dataset.live === 'off' && state.stream === null), 'the stream is closed');
    check(await page.evaluate(async () => (await fetch('/api/admin/events')).status) === 401, 'no stream after logout');
    check(errors.length === 0, `no page errors: ${errors.join('; ')}`);
  } finally {
    await context.close();
  }
}

const LIVE = { tr: { addresses: 'Yatırma adresleri', asOf: "Cobo'dan alınan rakamlar" },
  en: { addresses: 'Deposit addresses', asOf: 'Figures from Cobo as of' } };

function main() {
  return runBrowser(async (browser) => {
    const env = await startKasa(WORK, ['KASA_AUTO_CREDIT_LIMIT=1000', 'KASA_DUAL_APPROVAL_LIMIT=5000']);
    let n = 1;
    for (const lang of ['tr', 'en']) {
      for (const viewport of [{ width: 360, height: 740 }, { width: 1280, height: 800 }]) {
        const k = n++;
        await test(`admin_${lang}_${viewport.width}x${viewport.height}_login_assign_approve_reject_search_timeline`,
          () => run(browser, env, lang, viewport, k));
      }
    }
    await test('admin_viewer_sees_no_buttons_and_gets_403', () => viewer(browser, env));
    await test('admin_live_tr_360x740_addresses_balances_sse_logout', () => live(browser, env, 'tr', { width: 360, height: 740 }, 1));
    await test('admin_live_en_1280x800_addresses_balances_sse_logout', () => live(browser, env, 'en', { width: 1280, height: 800 }, 2));
  });
}

main();
