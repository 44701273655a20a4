// support.mjs — what the browser tests share: the simulators and `kasa serve` as child processes on
// free loopback ports, a test runner that ends with "N passed, N failed", small HTTP helpers.
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');
export const KASA_BIN = path.resolve(root, process.env.KASA_BIN || 'build/san/kasa');
export const OUT = path.resolve(root, process.env.KASA_TEST_OUT || 'build/test-out');
export const SHOTS = path.join(OUT, 'screenshots');
export const COBO_SEED = '1'.repeat(64);
export const CLIENT_SEED = '2'.repeat(64);
export const PASSWORD = 'Investor1';
export const WALLET_ID = 'b0b0b0b0-0000-4000-8000-000000000001';
export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const children = [];
export const tally = { passed: 0, failed: 0 };

export function log(...a) { console.error('  #', ...a); }

export async function test(name, fn) {
  try {
    await fn();
    tally.passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    tally.failed++;
    console.log(`FAIL ${name}`);
    console.log(`  ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n  ')}`);
  }
}

export function check(cond, what) { if (!cond) throw new Error(`check failed: ${what}`); }

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

export function start(work, args, name, env) {
  const out = fs.openSync(path.join(work, `${name}.log`), 'a');
  const child = spawn(KASA_BIN, args, { stdio: ['ignore', out, out], env: { ...process.env, ...env } });
  children.push(child);
  return child;
}

export async function waitPort(port, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

export async function post(url, body) {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`POST ${url} -> ${r.status} ${text}`);
  return JSON.parse(text);
}

export function stopAll() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch (e) { /* gone */ } }
}

// The simulators and `kasa serve` in work/, with extra configuration lines; the MT5 accounts
// 100001..100006 start with balance. { kasa, cobo, mt5, tg, config }.
export async function startKasa(work, extra = [], balance = '0') {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(SHOTS, { recursive: true });
  const [kasaPort, hookPort, monPort, coboPort, mt5Port, tgPort] =
    await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const pub = (seed) => execFileSync(KASA_BIN, ['sim', 'pubkey', '--key-seed', seed]).toString().trim().split(/\s+/).pop();
  const coboPub = pub(COBO_SEED);
  const clientPub = pub(CLIENT_SEED);
  const kasa = `http://127.0.0.1:${kasaPort}`;
  const cobo = `http://127.0.0.1:${coboPort}`;
  start(work, ['sim', 'cobo', '--listen', `127.0.0.1:${coboPort}`, '--webhook-url', `http://127.0.0.1:${hookPort}/cobo/webhook`,
    '--key-seed', COBO_SEED, '--client-key', clientPub], 'sim-cobo');
  const accounts = [];
  for (let i = 0; i < 6; i++) accounts.push('--account', `${100001 + i}:${PASSWORD}:${balance}`);
  start(work, ['sim', 'mt5', '--listen', `127.0.0.1:${mt5Port}`, '--manager', '1000:ManagerPass1', ...accounts], 'sim-mt5');
  start(work, ['sim', 'telegram', '--listen', `127.0.0.1:${tgPort}`, '--token', '123456:TESTTOKEN'], 'sim-telegram');
  await Promise.all([waitPort(coboPort, 10000), waitPort(mt5Port, 10000), waitPort(tgPort, 10000)]);
  const config = path.join(work, 'kasa.env');
  fs.writeFileSync(config, [
    `KASA_LISTEN=127.0.0.1:${kasaPort}`, `KASA_WEBHOOK_LISTEN=127.0.0.1:${hookPort}`, `KASA_JOURNAL_DIR=${path.join(work, 'journal')}`,
    `KASA_MONITOR=tcp://127.0.0.1:${monPort}`, `KASA_STATIC_DIR=${path.join(root, 'web', 'static')}`,
    'KASA_COOKIE_SECURE=off', 'KASA_METRICS_LISTEN=off',   // its default port is one for the whole machine
    `COBO_API_URL=${cobo}/v2`, `COBO_API_KEY=${clientPub}`, `COBO_API_SECRET=${CLIENT_SEED}`,
    `COBO_WEBHOOK_PUBKEY=${coboPub}`, `COBO_WALLET_ID=${WALLET_ID}`, 'KASA_CHAINS=TRON_USDT,ETH_USDT,TRON',
    `MT5_URL=http://127.0.0.1:${mt5Port}`, 'MT5_LOGIN=1000', 'MT5_PASSWORD=ManagerPass1',
    `TELEGRAM_API_URL=http://127.0.0.1:${tgPort}`, 'TELEGRAM_BOT_TOKEN=123456:TESTTOKEN', 'TELEGRAM_CHAT_ID=-100123',
    'KASA_TOKEN_TRON_USDT=1:0.5:1', 'KASA_TOKEN_ETH_USDT=1:0.5:1', 'KASA_TOKEN_TRON=0.1234:0:1', ...extra, '',
  ].join('\n'));
  start(work, ['serve', '--config', config], 'kasa');
  await Promise.all([waitPort(kasaPort, 20000), waitPort(hookPort, 20000)]);
  return { kasa, cobo, mt5: `http://127.0.0.1:${mt5Port}`, tg: `http://127.0.0.1:${tgPort}`, config };
}

// A new browser context and page at viewport, in lang's locale; errors collects the page's errors
// and console errors (expected 401/403 answers show as "Failed to load resource" and are not errors).
export async function openPage(browser, viewport, lang) {
  const context = await browser.newContext({ viewport, locale: lang === 'en' ? 'en-GB' : 'tr-TR' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
  return { context, page, errors };
}

// Opens url at its login form: Turkish by default; for 'en' the language button is pressed and the
// page reloaded (the choice must survive a reload).
export async function openLogin(page, url, lang) {
  await page.goto(url);
  await page.waitForSelector('#login-form', { state: 'visible' });
  check(await page.getAttribute('html', 'lang') === 'tr', 'Turkish is the default');
  if (lang === 'en') {
    await page.click('#lang-en');
    await page.reload();
    await page.waitForSelector('#login-form', { state: 'visible' });
    check(await page.getAttribute('html', 'lang') === 'en', 'English remembered');
  }
}

// Nothing spills sideways at the page's width.
export async function checkNoOverflow(page) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal scrolling (${overflow}px)`);
}

// ---- admins ----

function base32(text) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const c of text.replace(/=+$/, '')) {
    value = (value << 5) | alpha.indexOf(c);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
}

// RFC 6238 with HMAC-SHA1, 30 s, 6 digits; each call uses a step not used before by this admin.
export function totp(admin) {
  const now = Math.floor(Date.now() / 1000 / 30);
  const step = Math.max(now - 1, (admin.step || 0) + 1);
  admin.step = step;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32(admin.secret)).update(msg).digest();
  const off = mac[19] & 15;
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(bin % 1000000).padStart(6, '0');
}

// `kasa admin add NAME --role ROLE`: { name, password (one-time), secret, step }.
export function addAdmin(env, name, role) {
  const out = execFileSync(KASA_BIN, ['admin', 'add', name, '--role', role, '--config', env.config]).toString();
  const password = /one-time password: (\S+)/.exec(out)[1];
  const secret = /\?secret=([A-Z2-7]+)/.exec(out)[1];
  return { name, password, secret, step: 0 };
}

// Fills the admin login form (password: the admin's own unless given) with a fresh code and submits.
export async function adminLogin(page, admin, password) {
  await page.fill('#name', admin.name);
  await page.fill('#password', password || admin.password);
  await page.fill('#code', totp(admin));
  await page.click('#login-submit');
}

// The first login of a new admin: one-time password, then a new one; waits for the panel.
export async function adminFirstLogin(page, admin) {
  await adminLogin(page, admin);
  await page.waitForSelector('#password-view:not([hidden])');
  await page.fill('#pw-current', admin.password);
  admin.password = `${admin.name}-a-new-password`;
  await page.fill('#pw-new', admin.password);
  await page.click('#password-submit');
  await page.waitForSelector('#app-view:not([hidden])');
}

// Runs body(browser) with the system's headless Chromium: a throw outside test() counts as a failed
// "setup". Then closes the browser, stops every child and ends the process with "N passed, N failed".
export async function runBrowser(body) {
  let browser;
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: BROWSER_ARGS });
    await body(browser);
  } catch (e) {
    tally.failed++;
    console.log(`FAIL setup\n  ${e && e.stack || e}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    stopAll();
  }
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exit(tally.failed ? 1 : 0);
}

process.on('exit', stopAll);
