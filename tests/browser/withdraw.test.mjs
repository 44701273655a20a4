// withdraw.test.mjs — a withdrawal end to end in two real browsers (system Chromium via
// playwright-core): an investor (Turkish, 360x740) asks to withdraw in the panel, sees the fee and the
// exact token amount before confirming and re-enters the MT5 password; a treasurer (English, 1280x800)
// sees it appear in the admin panel's withdrawal queue (live), with the totals per token against the
// withdrawal wallet's balance, and approves it (the confirmation repeats amounts and address); the
// Cobo simulator completes the transfer with its webhooks; the investor sees it completed without a
// reload and the balance reduced. A second one rejected by the treasurer shows as refunded with the
// balance restored; a third that Cobo fails is held and refunded from the panel. The admin page is
// also checked at 360 px. Ends with the line "N passed, N failed".
import path from 'node:path';
import { OUT, SHOTS, PASSWORD, WALLET_ID, addAdmin, adminFirstLogin, check, checkNoOverflow, openPage, post, runBrowser,
  startKasa, test } from './support.mjs';

const WORK = path.join(OUT, `browser-withdraw-${process.pid}`);
const DEST = 'TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t';   // a valid TRON address (base58check, 0x41)
const LOGIN = 100001;

// The investor asks for amount (account currency) and returns the new withdrawal's id.
async function request(inv, amount) {
  const before = await inv.$$eval('#wd-list li.withdrawal', (lis) => lis.map((li) => li.dataset.id));
  await inv.selectOption('#wd-token', 'TRON_USDT');
  await inv.fill('#wd-address', DEST);
  await inv.fill('#wd-amount', amount);
  const fee = '1', tokens = String(Number(amount) - 1);   // KASA_WITHDRAW_RULES: rate 1, fee 1
  await inv.click('#wd-quote');
  await inv.waitForFunction((x) => document.querySelector('#wd-quote-text').textContent.includes(x), `${tokens} TRON_USDT`,
    { timeout: 20000 });
  const quote = await inv.textContent('#wd-quote-text');
  check(quote.includes(`ücret ${fee}`) && quote.includes(`${tokens} TRON_USDT`), `the quote shows fee and token amount (${quote})`);
  check(!(await inv.isDisabled('#wd-submit')), 'confirming is possible once quoted');
  await inv.fill('#wd-password', PASSWORD);
  await inv.click('#wd-submit');
  const id = await (await inv.waitForFunction((ids) => {
    const li = [...document.querySelectorAll('#wd-list li.withdrawal')].find((x) => !ids.includes(x.dataset.id));
    return li && li.dataset.id;
  }, before, { timeout: 20000 })).jsonValue();
  check(await inv.inputValue('#wd-password') === '', 'the password is not kept in the form');
  return id;
}

async function investorState(inv, id, st) {
  await inv.waitForFunction(([i, s]) => {
    const li = document.querySelector(`#wd-list li.withdrawal[data-id="${i}"]`);
    return li && li.querySelector('.wd-state').dataset.state === s;
  }, [id, st], { timeout: 20000 });
}

async function balanceIs(inv, text) {
  await inv.waitForFunction((x) => document.querySelector('#balance').textContent.includes(x), text, { timeout: 20000 });
}

// In the admin panel: the queue row of id (waits for it), its reason filled, action clicked; the
// confirmation's text is returned after OK.
async function adminAct(adm, id, action, reason) {
  const row = adm.locator(`#wd-queue li.wd-item[data-id="${id}"]`);
  await row.waitFor({ timeout: 15000 });
  await row.locator('.w-reason-input').fill(reason);
  await row.locator(`button[data-action="${action}"]`).click();
  await adm.waitForSelector('#confirm[open]');
  const text = await adm.textContent('#confirm-text');
  await adm.click('#confirm-ok');
  return text;
}

async function view(adm, name) {
  await adm.selectOption('#wd-view', name);
}

async function flow(browser, env) {
  const approver = addAdmin(env, 'payer', 'treasurer');
  const I = await openPage(browser, { width: 360, height: 740 }, 'tr');
  const A = await openPage(browser, { width: 1280, height: 800 }, 'en');
  const inv = I.page, adm = A.page;
  try {
    await inv.goto(env.kasa + '/');
    await inv.fill('#login', String(LOGIN));
    await inv.fill('#password', PASSWORD);
    await inv.click('#login-submit');
    await inv.waitForSelector('#app-view:not([hidden])');
    await balanceIs(inv, '1000.00');

    await adm.goto(env.kasa + '/admin.html');
    await adm.click('#lang-en');
    await adminFirstLogin(adm, approver);
    await adm.click('.tab[data-tab="withdrawals"]');
    await adm.waitForSelector('body[data-live="on"]', { timeout: 10000 });
    await adm.evaluate(() => { window.__same = 1; });

    // 1: requested, debited at once, approved in the admin panel, completed by Cobo's webhooks
    const first = await request(inv, '100');
    await investorState(inv, first, 'DEBITED');
    await balanceIs(inv, '900.00');
    await inv.screenshot({ path: path.join(SHOTS, 'withdraw-investor-1-requested.png'), fullPage: true });
    const row = adm.locator(`#wd-queue li.wd-item[data-id="${first}"]`);
    await row.waitFor({ timeout: 15000 });   // appears live, without a reload
    check((await row.textContent()).includes('Approvals: 0/1'), 'the row says the approvals it needs');
    const tot = adm.locator('#wd-totals tr[data-token="TRON_USDT"]');
    await adm.waitForFunction(() => {
      const tr = document.querySelector('#wd-totals tr[data-token="TRON_USDT"]');
      return tr && tr.children[4].textContent === '99' && tr.children[5].textContent === '500';
    }, null, { timeout: 15000 });
    check((await tot.textContent()).includes('Enough'), `the wallet covers what is to pay (${await tot.textContent()})`);
    await checkNoOverflow(adm);
    await adm.screenshot({ path: path.join(SHOTS, 'withdraw-admin-1280-queue.png'), fullPage: true });
    const said = await adminAct(adm, first, 'approve', 'destination checked');
    check(said.includes('100.00 USD') && said.includes('99 USDT') && said.includes(DEST) && said.includes(String(LOGIN)),
      `the confirmation repeats amounts, account and address (${said})`);
    await investorState(inv, first, 'COMPLETED');   // live: the investor did not reload
    await balanceIs(inv, '900.00');
    check((await inv.textContent(`#wd-list li.withdrawal[data-id="${first}"]`)).match(/0x[0-9a-f]{16}|[0-9a-f]{64}/),
      'the completed row shows the transaction hash');
    await inv.screenshot({ path: path.join(SHOTS, 'withdraw-investor-2-completed.png'), fullPage: true });

    // 2: rejected by the approver: refunded, the balance restored
    const second = await request(inv, '50');
    await investorState(inv, second, 'DEBITED');
    await balanceIs(inv, '850.00');
    await adminAct(adm, second, 'reject', 'the investor asked to cancel');
    await investorState(inv, second, 'REFUNDED');
    await balanceIs(inv, '900.00');
    await inv.screenshot({ path: path.join(SHOTS, 'withdraw-investor-3-refunded.png'), fullPage: true });

    // 3: Cobo fails the transfer: held, then refunded from the panel's held view
    await post(env.cobo + '/sim/faults', { transfer_final: 'Failed' });
    // the session's MT5 request rate spent (as the panel's own refreshes can): the request still goes through
    const spent = await inv.evaluate(async () => {
      let n = 0;
      for (let i = 0; i < 14; i++) n += (await fetch('/api/me', { credentials: 'same-origin' })).status === 429 ? 1 : 0;
      return n;
    });
    check(spent > 0, `the session's rate is spent before the third request (${spent} answers 429)`);
    const third = await request(inv, '30');
    await investorState(inv, third, 'DEBITED');
    await adminAct(adm, third, 'approve', 'fine');
    await investorState(inv, third, 'HELD');
    await view(adm, 'held');
    await adminAct(adm, third, 'refund', 'Cobo failed it on chain');
    await investorState(inv, third, 'REFUNDED');
    await balanceIs(inv, '900.00');
    check(await adm.evaluate(() => window.__same === 1), 'the admin page was not reloaded');
    // a balance refresh that meets the spent rate (429) is asked again, never left behind
    const limited = await inv.evaluate(async () => {
      let n = 0;
      for (let i = 0; i < 14; i++) n += (await fetch('/api/me', { credentials: 'same-origin' })).status === 429 ? 1 : 0;
      document.querySelector('#balance').textContent = 'stale';
      loadMe();
      return n;
    });
    check(limited > 0, `the session's rate is spent before the refresh (${limited} answers 429)`);
    await balanceIs(inv, '900.00');

    // the detail of the first: who asked, who approved, and every transition on the timeline
    await view(adm, 'completed');
    const done = adm.locator(`#wd-queue li.wd-item[data-id="${first}"]`);
    await done.waitFor({ timeout: 10000 });
    await done.locator('button.details').click();
    await adm.waitForSelector('#wtimeline li[data-kind="ADMIN_ACTION"]');
    const tl = await adm.textContent('#wtimeline');
    check(tl.includes('admin:payer') && tl.includes('destination checked') && tl.includes('SENT → COMPLETED'),
      `the timeline names who, why and the transitions (${tl.slice(0, 300)})`);
    const detail = await adm.textContent('#wdetail');
    check(detail.includes('payer (1/1)'), 'the detail names the approver');
    check(detail.includes(`investor:${LOGIN}`), `the detail names who asked (${detail.slice(0, 300)})`);
    await adm.screenshot({ path: path.join(SHOTS, 'withdraw-admin-1280-detail.png'), fullPage: true });
    await adm.setViewportSize({ width: 360, height: 740 });
    // back to the list (it loads the view last chosen, "completed"), then "all" chosen at once: two
    // loads in flight. The first is answered late, after the second; that late answer of the view left
    // must not overwrite the list asked last (a busy machine did this by itself)
    let late = 0;
    const completedList = (url) => url.pathname === '/api/admin/withdrawals' && url.searchParams.get('state') === 'COMPLETED';
    await adm.route(completedList, async (route) => {
      late++;
      await new Promise((done) => setTimeout(done, 1500));
      await route.continue();
    });
    await adm.click('#wd-back');
    await view(adm, 'all');
    await adm.locator(`#wd-queue li.wd-item[data-id="${third}"]`).waitFor({ timeout: 10000 });
    await adm.waitForTimeout(2500);   // the late answer has come meanwhile
    await adm.unroute(completedList);
    check(late > 0, 'the list of the view left was asked, and answered late');
    check(await adm.locator(`#wd-queue li.wd-item[data-id="${third}"]`).isVisible(),
      'the late answer of the view left did not overwrite the list asked last');
    await checkNoOverflow(adm);
    await adm.screenshot({ path: path.join(SHOTS, 'withdraw-admin-360-all.png'), fullPage: true });
    check(I.errors.length === 0 && A.errors.length === 0, `no page errors: ${[...I.errors, ...A.errors].join('; ')}`);
  } finally {
    await I.context.close();
    await A.context.close();
  }
}

runBrowser(async (browser) => {
  const env = await startKasa(WORK, ['KASA_WITHDRAW_RULES=TRON_USDT=1:1:10:5000:20000'], '1000');
  await post(env.cobo + '/sim/balances', { wallet_id: WALLET_ID, token_id: 'TRON_USDT', amount: '500' });
  await test('withdraw_request_approve_complete_reject_refund_held_refund_live', () => flow(browser, env));
});
