// support.mjs — what the browser tests share: the simulators and `kasa serve` as child processes on
// free loopback ports, a test runner that ends with "N passed, N failed", small HTTP helpers.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

// The simulators and `kasa serve` in work/, with extra configuration lines. { kasa, cobo, mt5, tg, config }.
export async function startKasa(work, extra = []) {
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
  for (let i = 0; i < 6; i++) accounts.push('--account', `${100001 + i}:${PASSWORD}:0`);
  start(work, ['sim', 'mt5', '--listen', `127.0.0.1:${mt5Port}`, '--manager', '1000:ManagerPass1', ...accounts], 'sim-mt5');
  start(work, ['sim', 'telegram', '--listen', `127.0.0.1:${tgPort}`, '--token', '123456:TESTTOKEN'], 'sim-telegram');
  await Promise.all([waitPort(coboPort, 10000), waitPort(mt5Port, 10000), waitPort(tgPort, 10000)]);
  const config = path.join(work, 'kasa.env');
  fs.writeFileSync(config, [
    `KASA_LISTEN=127.0.0.1:${kasaPort}`, `KASA_WEBHOOK_LISTEN=127.0.0.1:${hookPort}`, `KASA_JOURNAL_DIR=${path.join(work, 'journal')}`,
    `KASA_MONITOR=tcp://127.0.0.1:${monPort}`, `KASA_STATIC_DIR=${path.join(root, 'web', 'static')}`,
    'KASA_COOKIE_SECURE=off',
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

process.on('exit', stopAll);
