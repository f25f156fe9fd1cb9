// loop-shot.mjs: docs/loop-view.png at a rush of 1,000: the page's loop
// view 5 s into /rush?modes=blocking,async&customers=1000, with one
// mixed order, in the browser test's chromium (run it like page.test.mjs:
// COFFEE_BIN_DIR=build DATABASE_URL=... node loop-shot.mjs OUT.png, e.g.
// through ../../scripts/with-postgres). Not a test: it asserts nothing.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const binDir = process.env.COFFEE_BIN_DIR, out = process.argv[2] || 'loop-view.png';
const children = [];
function start(name, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(path.join(binDir, name), ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(c);
    let s = '';
    const t = setTimeout(() => reject(new Error(name + ': no port in 10 s')), 10000);
    c.stdout.on('data', (d) => { s += d; const m = /listening on (http:\/\/[^\s]+:\d+)/.exec(s); if (m) { clearTimeout(t); resolve(m[1]); } });
  });
}
const profile = mkdtempSync(path.join(tmpdir(), 'coffee-shot-'));
try {
  const kitchen = await start('coffee-kitchen', []);
  const base = await start('coffee-server', ['--kitchen-url', kitchen]);
  for (let i = 0; i < 100 && (await fetch(base + '/readyz').catch(() => ({}))).status !== 200; i++)
    await new Promise((r) => setTimeout(r, 100));
  // The rush's stream is left running: the async thousand end in about a
  // second, the blocking thousand keep the eight workers busy for ~90 s.
  const rush = await fetch(base + '/rush?modes=blocking,async&customers=1000&scale=0.1');
  await new Promise((r) => setTimeout(r, 3000));
  await (await fetch(base + '/make-coffee?mode=mixed&scale=0.5')).text();
  await new Promise((r) => setTimeout(r, 1000));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, viewport: { width: 1360, height: 900 }, args: ['--no-sandbox', '--disable-gpu'] });
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(base + '/');
  await page.selectOption('#loop-seconds', '10');
  await page.waitForFunction(() => +document.getElementById('loop-canvas').dataset.brew > 0, null, { timeout: 20000 });
  await page.locator('#loopview').screenshot({ path: out });
  console.log('loop-shot: ' + out + ': ' + await page.evaluate(() => document.getElementById('loop-canvas').dataset.orders) + ' orders drawn');
  await ctx.close();
  rush.body.cancel().catch(() => {});
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(profile, { recursive: true, force: true });
}
