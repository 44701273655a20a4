// panel.test.mjs — the investor panel in a real browser (system Chromium via playwright-core).
// Starts the Cobo, MT5 and Telegram simulators and `kasa serve`, then, in Turkish and in English,
// at 360x740 and 1280x800: logs in, creates a TRON USDT address, sees its QR code, has the Cobo
// simulator send a deposit to it, and watches the row go from confirming to credited and the
// balance change — live, without reloading. Screenshots go to $KASA_TEST_OUT/screenshots.
// Ends with the line "N passed, N failed".
import path from 'node:path';
import { OUT, SHOTS, PASSWORD, WALLET_ID, check, checkNoOverflow, openLogin, openPage, post, runBrowser, startKasa,
  test } from './support.mjs';

const WORK = path.join(OUT, `browser-${process.pid}`);

async function setup() {
  return startKasa(WORK);
}

// Records every state a deposit row shows, as the page changes (no polling gaps).
const OBSERVER = () => {
  window.__states = [];
  const seen = () => document.querySelectorAll('#deposit-list .deposit').forEach((li) => {
    const s = li.dataset.state + ':' + li.querySelector('.dep-state').textContent;
    if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
  });
  new MutationObserver(seen).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
};

const TEXT = {
  tr: { login: 'Giriş yap', create: 'adresi oluştur', warn: 'yalnızca TRON (TRC20) ağında USDT', confirming: 'Onaylanıyor',
        credited: 'Hesaba geçti', balance: 'Bakiye', copy: 'Adresi kopyala', wrong: 'yanlış' },
  en: { login: 'Log in', create: 'Create USDT', warn: 'Send only USDT on TRON (TRC20)', confirming: 'Confirming',
        credited: 'Credited', balance: 'Balance', copy: 'Copy address', wrong: 'Wrong' },
};

async function run(browser, env, lang, viewport, login) {
  const tag = `${lang}-${viewport.width}x${viewport.height}`;
  const T = TEXT[lang];
  const { context, page, errors } = await openPage(browser, viewport, lang);
  try {
    await openLogin(page, env.kasa + '/', lang);   // the language choice survives a reload
    check(await page.textContent('#login-submit') === T.login, 'login button text');
    // a wrong password first: a clear message, announced
    await page.fill('#login', String(login));
    await page.fill('#password', 'not-the-password');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error:not([hidden])');
    check((await page.textContent('#login-error')).includes(T.wrong), 'wrong-password message');
    await page.screenshot({ path: path.join(SHOTS, `${tag}-0-login.png`), fullPage: true });
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('#app-view:not([hidden])');
    await page.waitForFunction(() => document.querySelector('#balance').textContent.includes('0.00'));
    await page.evaluate(OBSERVER);
    await page.screenshot({ path: path.join(SHOTS, `${tag}-1-logged-in.png`), fullPage: true });

    // create the TRON USDT address: address, QR, copy button, network warning
    const card = page.locator('li.wallet[data-token="TRON_USDT"]');
    const createBtn = card.locator('button.create');
    check((await createBtn.textContent()).includes(lang === 'tr' ? 'adresi oluştur' : 'Create'), 'create button text');
    await createBtn.click();
    const input = page.locator('#addr-TRON_USDT');
    await input.waitFor();
    const address = await input.inputValue();
    check(/^T[1-9A-HJ-NP-Za-km-z]{33}$/.test(address), `a TRON address (${address})`);
    check((await card.locator('.warning').textContent()).includes(T.warn), 'TRC20 warning');
    check(await page.locator('label[for="addr-TRON_USDT"]').count() === 1, 'the address has a label');
    const qrOk = await card.locator('img.qr').evaluate((img) => new Promise((resolve) => {
      const done = () => resolve(img.complete && img.naturalWidth > 0);
      if (img.complete) done(); else { img.onload = done; img.onerror = () => resolve(false); }
    }));
    check(qrOk, 'the QR code image loads');
    check((await card.locator('img.qr').getAttribute('alt')).length > 5, 'the QR has alt text');
    // the QR code really decodes to the address: the SVG as the browser draws it, read by jsQR
    const pixels = await card.locator('img.qr').evaluate((img) => {
      const size = 37 * 6;
      const c = document.createElement('canvas');
      c.width = size; c.height = size;
      const g = c.getContext('2d');
      g.drawImage(img, 0, 0, size, size);
      const d = g.getImageData(0, 0, size, size).data;
      let bin = '';
      for (let i = 0; i < d.length; i += 8192) bin += String.fromCharCode.apply(null, d.subarray(i, i + 8192));
      return { size, b64: btoa(bin) };
    });
    const decoded = jsQR(new Uint8ClampedArray(Buffer.from(pixels.b64, 'base64')), pixels.size, pixels.size);
    check(decoded && decoded.data === address, `the QR decodes to the address (${decoded ? decoded.data : 'nothing'})`);
    check(await card.locator('button.copy').textContent() === T.copy, 'copy button text');
    // TRX on TRON shares the address
    check(await page.locator('#addr-TRON').inputValue() === address, 'TRX shares the TRON address');
    await checkNoOverflow(page);
    await page.screenshot({ path: path.join(SHOTS, `${tag}-2-address.png`), fullPage: true });

    // Cobo sees a deposit to it: confirming first (it stays Confirming until we say Completed)
    const dep = await post(env.cobo + '/sim/deposit', { address, amount: '100', token_id: 'TRON_USDT', chain_id: 'TRON',
      wallet_id: WALLET_ID, confirmations: 20, final: null });
    const row = page.locator(`li.deposit[data-id="${dep.transaction_id}"]`);
    await row.waitFor({ timeout: 15000 });
    await page.waitForFunction((id) => document.querySelector(`li.deposit[data-id="${id}"]`).dataset.state === 'PENDING',
      dep.transaction_id, { timeout: 15000 });
    check((await row.locator('.dep-state').textContent()).startsWith(T.confirming), 'confirming shown');
    check((await row.locator('.dep-amount').textContent()).includes('100 USDT'), 'token amount shown');
    await page.screenshot({ path: path.join(SHOTS, `${tag}-3-confirming.png`), fullPage: true });

    // Completed at Cobo: kasa locks, credits MT5, and the panel shows it without a reload
    await post(`${env.cobo}/sim/transactions/${dep.transaction_id}`, { status: 'Completed', confirmed_num: 20 });
    await page.waitForFunction((id) => ['CREDITED', 'NOTIFIED'].includes(
      document.querySelector(`li.deposit[data-id="${id}"]`).dataset.state), dep.transaction_id, { timeout: 30000 });
    check((await row.locator('.dep-state').textContent()) === T.credited, 'credited shown');
    check((await row.locator('.dep-credit').textContent()).includes('99.50'), 'credited amount (100 - 0.50 fee)');
    check((await row.locator('.dep-ticket').textContent()).match(/\d+/), 'MT5 ticket shown');
    await page.waitForFunction(() => document.querySelector('#balance').textContent.includes('99.50'), null, { timeout: 10000 });
    const states = await page.evaluate(() => window.__states);
    const iPending = states.findIndex((s) => s.startsWith('PENDING'));
    const iDone = states.findIndex((s) => s.startsWith('CREDITED') || s.startsWith('NOTIFIED'));
    check(iPending >= 0 && iDone > iPending, `confirming then credited (${states.join(' > ')})`);
    check((await page.textContent('#announce')).length > 0, 'the change was announced (aria-live)');
    await page.screenshot({ path: path.join(SHOTS, `${tag}-4-credited.png`), fullPage: true });
    check(errors.length === 0, `no page errors: ${errors.join('; ')}`);
  } finally {
    await context.close();
  }
}

let jsQR;

async function main() {
  try {
    jsQR = (await import('jsqr')).default;
  } catch (e) {
    console.log('FAIL setup\n  jsqr is missing: run `npm install` in tests/browser');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  // launch() gives the browser a fresh, empty user-data dir of its own (removed on close);
  // each test then runs in its own context (no shared cookies or storage).
  await runBrowser(async (browser) => {
    const env = await setup();
    let login = 100001;
    for (const lang of ['tr', 'en']) {
      for (const viewport of [{ width: 360, height: 740 }, { width: 1280, height: 800 }]) {
        const l = login++;
        await test(`panel_${lang}_${viewport.width}x${viewport.height}_login_address_qr_deposit_live`,
          () => run(browser, env, lang, viewport, l));
      }
    }
    // Cluster mode answers "stale": true when MongoDB did not answer and one node's deposits are shown
    // (actors/views.h); the panel says so. The answer is made stale here on its way to the page.
    await test('panel_marks_a_deposit_list_that_may_be_stale', async () => {
      const { context, page, errors } = await openPage(browser, { width: 360, height: 740 }, 'tr');
      try {
        await openLogin(page, env.kasa + '/', 'tr');
        await page.fill('#login', '100006');
        await page.fill('#password', PASSWORD);
        await page.click('#login-submit');
        await page.waitForSelector('#app-view:not([hidden])');
        await page.waitForSelector('#deposits-empty:not([hidden])');
        check(await page.isHidden('#deposits-stale'), 'no mark on a fresh answer');
        await page.route('**/api/deposits', async (route) => {
          const response = await route.fetch();
          const json = await response.json();
          check(json.stale === false && json.cluster === false, `one node: never stale (${JSON.stringify(json)})`);
          await route.fulfill({ response, json: { ...json, stale: true } });
        });
        await page.reload();
        await page.waitForSelector('#deposits-stale:not([hidden])');
        check((await page.textContent('#deposits-stale')).includes('güncel olmayabilir'), 'the stale mark says so');
        await page.screenshot({ path: path.join(SHOTS, 'tr-360x740-stale.png'), fullPage: true });
        await page.unroute('**/api/deposits');
        await page.reload();
        await page.waitForSelector('#deposits-empty:not([hidden])');
        check(await page.isHidden('#deposits-stale'), 'the mark goes with a fresh answer');
        check(errors.length === 0, `no page errors: ${errors.join('; ')}`);
      } finally {
        await context.close();
      }
    });
    await test('panel_logout_returns_to_login', async () => {
      const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
      const page = await context.newPage();
      await page.goto(env.kasa + '/');
      await page.fill('#login', '100005');
      await page.fill('#password', PASSWORD);
      await page.click('#login-submit');
      await page.waitForSelector('#logout:not([hidden])');
      await page.click('#logout');
      await page.waitForSelector('#login-form', { state: 'visible' });
      await page.reload();
      await page.waitForSelector('#login-form', { state: 'visible' });    // the session is gone
      check(await page.isHidden('#app-view'), 'panel hidden after logout');
      await context.close();
    });
  });
}

main();
