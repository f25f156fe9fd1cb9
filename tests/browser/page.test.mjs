// page.test.mjs: the page at / in a real browser. Starts a throw-away
// kitchen and server (COFFEE_BIN_DIR, DATABASE_URL: run it through ./run),
// drives Debian's chromium with playwright-core, clicks the buttons and
// checks what is drawn against the JSON the page received. Every wait is
// for a condition, bounded by a timeout; nothing sleeps to synchronise.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const binDir = process.env.COFFEE_BIN_DIR;
const artifacts = process.env.COFFEE_ARTIFACTS || path.resolve('browser-artifacts');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const SCALE = '0.1';
const TOL_PX = 1.5; // rounding of percentages into device pixels

const children = [];
let base, context, page, profile;

// Starts one of our programs on port 0 and resolves with its URL once it
// prints "listening on http://HOST:PORT" (up to 10 s).
function startProgram(name, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(binDir, name), ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child.stderr.pipe(createWriteStream(path.join(artifacts, name + '.log')));
    let out = '';
    const timer = setTimeout(() => reject(new Error(name + ' did not announce its port in 10 s')), 10000);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(name + ' exited early with ' + code)); });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
}

// Resolves when fn() is truthy, checking every 100 ms, or rejects after ms.
async function until(what, fn, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch (e) { /* not yet */ }
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  assert.ok(binDir, 'COFFEE_BIN_DIR must name the build directory (use tests/browser/run)');
  assert.ok(process.env.DATABASE_URL, 'DATABASE_URL must be set (use tests/browser/run)');
  mkdirSync(artifacts, { recursive: true });
  const kitchen = await startProgram('coffee-kitchen', []);
  base = await startProgram('coffee-server', ['--kitchen-url', kitchen]);
  await until('/readyz', async () => (await fetch(base + '/readyz')).status === 200, 15000);

  profile = mkdtempSync(path.join(tmpdir(), 'coffee-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: browserPath,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => { pageErrors.push(String(e)); });
});
const pageErrors = [];

after(async () => {
  if (page) await page.screenshot({ path: path.join(artifacts, 'last.png'), fullPage: true }).catch(() => {});
  if (context) await context.close().catch(() => {});
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// What the page drew for the order element sel, read in the page: each
// bar's box, its track's box, the axis, and the order JSON the page got.
function drawn(sel) {
  return page.$eval(sel, (el) => {
    const id = +el.dataset.orderId;
    let json = null;
    for (const r of window.coffee.runs) for (const o of r.orders || []) if (o.order_id === id) json = o;
    const tl = el.querySelector('.tl');
    const bars = {};
    for (const b of el.querySelectorAll('.bar[data-step]')) {
      const bb = b.getBoundingClientRect(), tb = b.parentElement.getBoundingClientRect();
      bars[b.dataset.step] = { left: bb.left, right: bb.right, width: bb.width, trackLeft: tb.left, trackWidth: tb.width };
    }
    const results = {};
    for (const r of el.querySelectorAll('.result[data-step]')) results[r.dataset.step] = r.textContent;
    return { id, json, axis: +tl.dataset.axisMs, bars, results, head: el.querySelector('.order-head').textContent };
  });
}

// Every bar sits where the JSON says, on the order's axis, within TOL_PX.
function checkGeometry(d) {
  for (const s of d.json.steps) {
    const b = d.bars[s.name];
    assert.ok(b, 'a bar for ' + s.name);
    const pxPerMs = b.trackWidth / d.axis;
    const wantLeft = b.trackLeft + s.start_ms * pxPerMs, wantWidth = (s.end_ms - s.start_ms) * pxPerMs;
    assert.ok(Math.abs(b.left - wantLeft) <= TOL_PX, `${s.name} starts at ${b.left}px, want ${wantLeft}px`);
    assert.ok(Math.abs(b.width - Math.max(wantWidth, 2)) <= TOL_PX, `${s.name} is ${b.width}px wide, want ${wantWidth}px`);
  }
}

async function clickAndWait(button, sel) {
  const before = await page.locator(sel).count();
  await page.click(button);
  await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length > n, [sel, before]);
  return page.locator(sel).first();
}

test('GET / answers the page as HTML', async () => {
  for (const p of ['/', '/index.html']) {
    const r = await fetch(base + p);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(await r.text(), /<title>Coffee service/);
  }
  await page.goto(base + '/');
  await page.waitForSelector('#btn-async');
  for (const m of ['blocking', 'async', 'naive', 'mixed', 'threads', 'offload', 'compare'])
    assert.ok(await page.isVisible('#btn-' + m), m + ' button');
});

// What the page reads from a mode card: its button, lesson and expectation.
const modeCards = (p) => p.$$eval('#modes .mode[data-mode]', (els) => els.map((e) => ({
  name: e.dataset.mode, button: e.querySelector('button').textContent, lesson: e.querySelector('p').textContent,
  factor: +e.querySelector('.expect').dataset.factor, disabled: e.querySelector('button').disabled })));

test('the mode buttons, lessons and recipe come from GET /workflow', async () => {
  const w = await (await fetch(base + '/workflow')).json();
  assert.equal(w.critical_path_ms, 4000);
  assert.equal(w.sequential_ms, 6900);
  assert.deepEqual(await modeCards(page), w.modes.map((m) => ({ name: m.name, button: m.name, lesson: m.lesson,
                                                               factor: m.expected_ms, disabled: false })));
  assert.equal(await page.textContent('#recipe-crit'), '4 s');
  assert.equal(await page.textContent('#recipe-seq'), '6.9 s');
  assert.equal(await page.textContent('.recipe text[data-step=toast_bread]'), 'HTTP · 0.9 s');

  // A server with other tables gets other buttons: nothing is kept in the page.
  const other = structuredClone(w);
  other.modes = w.modes.filter((m) => m.name !== 'naive').map((m) => ({ ...m, lesson: 'served lesson of ' + m.name }));
  other.modes.find((m) => m.name === 'mixed').offered = false;
  other.steps.find((s) => s.name === 'brew_coffee').planned_ms = 1234;
  other.sequential_ms = 7134;
  const p2 = await context.newPage();
  try {
    await p2.route('**/workflow', (route) => route.fulfill({ json: other }));
    await p2.goto(base + '/');
    await p2.waitForSelector('#btn-async');
    const cards = await modeCards(p2);
    assert.deepEqual(cards.map((c) => c.name), ['blocking', 'async', 'mixed', 'threads', 'offload']);
    for (const c of cards) assert.equal(c.lesson, 'served lesson of ' + c.name);
    assert.equal(cards.find((c) => c.name === 'mixed').disabled, true, 'a mode not offered is disabled');
    assert.deepEqual(await p2.$$eval('#modes .pick input', (els) => els.map((e) => e.value)),
                     ['blocking', 'mixed', 'threads', 'offload', 'async']);
    assert.deepEqual(await p2.$$eval('#rush-modes input', (els) => els.map((e) => e.value)),
                     ['blocking', 'async', 'mixed', 'threads', 'offload']);
    assert.equal(await p2.textContent('.recipe text[data-step=brew_coffee]'), 'SQL · 1.23 s');
    assert.equal(await p2.textContent('#recipe-seq'), '7.13 s');
  } finally {
    await p2.close();
  }
});

test('an error answer is shown as an error', async () => {
  await page.fill('#scale', '99');
  const run = await clickAndWait('#btn-async', '.run[data-kind=error]');
  const text = await run.locator('.errbox').textContent();
  assert.match(text, /HTTP 400/);
  assert.match(text, /scale/);
});

test('naive brews before its inputs are ready; mixed is drawn too', async () => {
  await page.fill('#scale', SCALE);
  const naive = await clickAndWait('#btn-naive', '.run .order[data-mode=naive]');
  const d = await drawn('.run .order[data-mode=naive] >> nth=0');
  checkGeometry(d);
  assert.equal(d.results.brew_coffee, 'Coffee not ready!');
  assert.equal(await naive.locator('.bar.early[data-step=brew_coffee]').count(), 1, 'brew marked as started too early');
  await clickAndWait('#btn-mixed', '.run .order[data-mode=mixed]');
  checkGeometry(await drawn('.run .order[data-mode=mixed] >> nth=0'));
});

test('an async order is drawn in dependency order, widths as in the JSON', async () => {
  await page.fill('#scale', SCALE);
  await clickAndWait('#btn-async', '.run[data-kind=order] .order[data-mode=async]');
  const d = await drawn('.run[data-kind=order] .order[data-mode=async] >> nth=0');
  assert.ok(d.json, 'the page kept the JSON it drew');
  assert.equal(d.json.status, 'done');
  assert.equal(d.json.scale, Number(SCALE));
  assert.deepEqual(Object.keys(d.bars).sort(), d.json.steps.map((s) => s.name).sort());
  checkGeometry(d);
  const { boil_water: boil, grind_coffee_bean: grind, brew_coffee: brew, toast_bread: toast } = d.bars;
  for (const [name, b] of [['brew_coffee', brew], ['toast_bread', toast]]) {
    assert.ok(b.left >= boil.right - TOL_PX, `${name} starts (${b.left}) at or after boil_water ends (${boil.right})`);
    assert.ok(b.left >= grind.right - TOL_PX, `${name} starts (${b.left}) at or after grind ends (${grind.right})`);
  }
  for (const s of d.json.steps) assert.equal(d.results[s.name], s.result);
  assert.equal(d.results.brew_coffee, 'Coffee ready!');
  assert.match(d.head, /elapsed/);
  assert.ok(d.head.includes(Math.round(d.json.elapsed_ms) + ' ms'), 'elapsed shown: ' + d.head);

  // The page drew what the server stored.
  const stored = await (await fetch(`${base}/orders/${d.id}`)).json();
  for (const s of stored.steps) {
    const got = d.json.steps.find((x) => x.name === s.name);
    assert.ok(Math.abs(got.start_ms - s.start_ms) < 0.01 && Math.abs(got.end_ms - s.end_ms) < 0.01, s.name);
  }
});

test('compare stacks one timeline per mode on one axis', async () => {
  await page.fill('#scale', SCALE);
  const run = await clickAndWait('#btn-compare', '.run[data-kind=compare]');
  assert.equal(await page.locator('.run').first().getAttribute('data-kind'), 'compare', 'newest on top');
  const orders = run.locator('.order');
  assert.equal(await orders.count(), 2);
  assert.deepEqual(await orders.evaluateAll((els) => els.map((e) => e.dataset.mode)), ['blocking', 'async']);
  const geo = await orders.evaluateAll((els) => els.map((e) => {
    const t = e.querySelector('.track').getBoundingClientRect(), end = e.querySelector('.vl.end').getBoundingClientRect();
    return { top: e.getBoundingClientRect().top, trackLeft: t.left, trackWidth: t.width, end: end.left,
             axis: e.querySelector('.tl').dataset.axisMs };
  }));
  assert.ok(geo[1].top > geo[0].top, 'stacked one above the other');
  assert.equal(geo[0].axis, geo[1].axis, 'one time axis');
  assert.ok(Math.abs(geo[0].trackLeft - geo[1].trackLeft) < 0.5 && Math.abs(geo[0].trackWidth - geo[1].trackWidth) < 0.5);
  assert.ok(geo[0].end > geo[1].end, 'blocking ends to the right of async');
  for (const i of [0, 1]) checkGeometry(await drawn(`.run[data-kind=compare] >> nth=0 >> .order >> nth=${i}`));
  assert.match(await run.locator('.speedup').textContent(), /speedup ×\d+\.\d\d \(blocking ÷ async\)/);
});

// ---- rush hour, live charts, client-vs-server wait -----------------------

test('rush hour: bad input shows the server\'s error', async () => {
  await page.fill('#rush-customers', '1001');
  await page.click('#btn-rush');
  await page.waitForSelector('[data-rush-error="400"]');
  assert.match(await page.textContent('[data-rush-error="400"]'), /customers/);
  await page.fill('#rush-customers', '50');
});

test('rush hour: 50 customers in two modes, one canvas row per order, as streamed', async () => {
  await page.fill('#rush-customers', '50');
  await page.fill('#rush-scale', SCALE);
  assert.deepEqual(await page.$$eval('#rush-modes input:checked', (els) => els.map((e) => e.value)), ['blocking', 'async']);
  await page.click('#btn-rush');
  await page.waitForFunction(() => document.querySelectorAll('.lane[data-summary=yes]').length === 2, null, { timeout: 60000 });
  await page.waitForFunction(() => window.coffee.rush.done);
  const got = await page.evaluate(() => {
    const out = {};
    const { rush } = window.coffee;
    for (const [mode, lane] of Object.entries(rush.lanes)) {
      const c = lane.canvas, g = c.getContext('2d'), k = c.width / lane.w;
      // The colour drawn at the middle of every bar, read back from the canvas.
      const px = lane.drawn.map((d) => d.bars.map((b) => Array.from(
        g.getImageData(Math.floor((b.x0 + b.x1) / 2 * k), Math.floor((d.y + d.h / 2) * k), 1, 1).data)));
      out[mode] = { n: lane.count, drawn: lane.drawn, rows: lane.rows, px, width: lane.w,
                    waves: +lane.el.dataset.waves, summary: lane.summary, text: lane.el.textContent };
    }
    return { out, axis: rush.axisMs };
  });
  const hex = (rgb) => '#' + rgb.slice(0, 3).map((v) => v.toString(16).padStart(2, '0')).join('');
  const colors = await page.evaluate(() => ({ http: getComputedStyle(document.documentElement).getPropertyValue('--http').trim(),
                                            sql: getComputedStyle(document.documentElement).getPropertyValue('--sql').trim() }));
  const ids = new Set();
  for (const mode of ['blocking', 'async']) {
    const lane = got.out[mode];
    assert.equal(lane.n, 50, mode + ': 50 orders streamed');
    assert.equal(lane.drawn.length, 50, mode + ': 50 rows drawn');
    const x = (ms) => ms / got.axis * lane.width;
    lane.drawn.forEach((d, i) => {
      const o = lane.rows[d.row].o;
      assert.equal(o.mode, mode);
      assert.equal(o.status, 'done');
      ids.add(o.order_id);
      if (i > 0) assert.ok(d.y > lane.drawn[i - 1].y && d.seq > lane.drawn[i - 1].seq, 'rows in arrival order');
      // Every step's I/O bar where its JSON says, in its I/O's colour.
      for (const s of o.steps) {
        const a = s.start_ms + (s.queued_ms || 0);
        const b = d.bars.findIndex((bar) => bar.kind === s.io && Math.abs(bar.x0 - x(a)) <= TOL_PX &&
                                           Math.abs(bar.x1 - Math.max(x(s.end_ms), x(a) + 1)) <= TOL_PX);
        assert.ok(b >= 0, `${mode} row ${d.row}: a ${s.io} bar for ${s.name}`);
        // Its colour shows where no bar painted after it covers it.
        const mid = (d.bars[b].x0 + d.bars[b].x1) / 2;
        if (!d.bars.slice(b + 1).some((c) => c.x0 - 1 <= mid && mid <= c.x1 + 1))
          assert.equal(hex(lane.px[i][b]), colors[s.io], `${mode} row ${d.row}: ${s.name} drawn in ${s.io} colour`);
      }
      assert.ok(lane.px[i].some((rgb) => hex(rgb) === colors.sql), `${mode} row ${d.row}: the brew shows`);
    });
    assert.equal(lane.summary.ok, 50);
    assert.match(lane.text, /orders\/s/);
    assert.match(lane.text, /p50 \/ p99 \/ max/);
    // The cost line: the threads, switches and CPU the summary says, under the lane.
    assert.match(lane.text, new RegExp(`cost${lane.summary.threads_peak} threads?, ${lane.summary.context_switches} context switches`));
  }
  assert.equal(got.out.blocking.summary.threads_peak, 8); // its workers
  assert.equal(got.out.async.summary.threads_peak, 1);    // the loop
  assert.equal(ids.size, 100, 'one order id per row');
  // Blocking runs --workers (8) at a time: waves, and a queue; async one wave.
  assert.ok(got.out.blocking.waves > 1, 'blocking shows ' + got.out.blocking.waves + ' waves');
  assert.equal(got.out.async.waves, 1);
  assert.ok(got.out.blocking.drawn.some((d) => d.bars.some((b) => b.kind === 'queued')), 'blocking rows queued');
  assert.ok(got.out.blocking.summary.queued_max_ms > got.out.async.summary.queued_max_ms);
  // The rows are the server's orders.
  const one = got.out.async.rows.find(Boolean).o;
  const stored = await (await fetch(`${base}/orders/${one.order_id}`)).json();
  assert.equal(stored.steps.length, one.steps.length);
});

test('live charts move under coffee-client load', async () => {
  const client = spawn(path.join(binDir, 'coffee-client'), ['--url', base, '--mode', 'async', '--orders', '60',
    '--concurrency', '6', '--scale', SCALE], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(client);
  const exited = new Promise((resolve) => client.on('exit', resolve));
  await page.waitForFunction(() => window.coffee.live.samples.some((s) => s.rate.async > 0) &&
    window.coffee.live.samples.some((s) => s.inflight.async > 0), null, { timeout: 30000 });
  assert.equal(await exited, 0, 'coffee-client succeeded');
  await page.waitForFunction(() => +document.querySelector('canvas[data-chart=rate]').dataset.max > 0);
  const charts = await page.$$eval('canvas[data-chart]', (els) => els.map((c) => ({ key: c.dataset.chart, points: +c.dataset.points })));
  assert.equal(charts.length, 8);
  for (const c of charts) assert.ok(c.points >= 1, c.key + ' has points');
  assert.ok((await page.evaluate(() => window.coffee.live.samples.some((s) => s.p99.async > 0))), 'async p99 charted');
});

test('an async order sent during a mixed brew: client wait beside server elapsed', async () => {
  await page.fill('#scale', '1');
  const before = await page.locator('.run[data-kind=order] .order[data-mode=async]').count();
  const t0 = Date.now();
  await page.click('#btn-mixed');
  // The brew freezes the loop (after the 3 s boil): /livez stops answering.
  await until('the mixed brew to freeze the loop', async () => {
    if (Date.now() - t0 < 2900) return false;
    try { await fetch(base + '/livez', { signal: AbortSignal.timeout(150) }); return false; } catch (e) { return true; }
  }, 20000);
  await page.click('#btn-async');
  await page.fill('#scale', SCALE);
  await page.waitForFunction((n) => document.querySelectorAll('.run[data-kind=order] .order[data-mode=async]').length > n,
                             before, { timeout: 30000 });
  const o = page.locator('.run[data-kind=order] .order[data-mode=async]').first();
  const gap = +(await o.locator('.clientwait').getAttribute('data-gap-ms'));
  const client = +(await o.locator('.clientwait').getAttribute('data-client-ms'));
  assert.ok(gap > 100, 'the client waited ' + gap + ' ms more than the server measured');
  assert.ok(client > gap);
  assert.match(await o.locator('.waited').textContent(), /waited .* for the loop before the server saw it/);
  const mixed = page.locator('.run[data-kind=order] .order[data-mode=mixed]').first();
  await page.waitForFunction(() => document.querySelector('.run[data-kind=order] .order[data-mode=mixed] .clientwait'));
  assert.equal(await mixed.locator('.waited').count(), 0, 'the mixed order itself was seen at once');
});

// ---- the loop view and the trace ------------------------------------------

test('the loop view: the loop and the workers from /trace, the mixed brew on the loop, the stall listed', async () => {
  await page.selectOption('#loop-seconds', '60');
  await page.waitForFunction(() => document.querySelector('#loopview[data-state=ok]') &&
    +document.getElementById('loop-canvas').dataset.brew > 0, null, { timeout: 20000 });
  const got = await page.evaluate(() => {
    const v = window.coffee.loopView, c = document.getElementById('loop-canvas');
    const loopTid = v.last.traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.args.name.includes('loop')).tid;
    // The longest: the scale-1 brew of the test above (earlier ones ran at SCALE).
    const brew = v.last.traceEvents.filter((e) => e.ph === 'X' && e.tid === loopTid && e.name === 'brew')
      .reduce((a, b) => (b.dur > a.dur ? b : a));
    const g = v.geom, k = c.width / c.clientWidth;
    const x = (us) => g.label + (g.width - g.label - 6) * (us - g.start) / (g.end - g.start);
    const row = g.rows.findIndex((n) => n.includes('loop'));
    const px = Array.from(c.getContext('2d').getImageData(Math.floor(x(brew.ts + brew.dur / 2) * k),
      Math.floor((g.top + row * g.row + g.row / 2) * k), 1, 1).data);
    return { rows: g.rows, brew, px, bad: getComputedStyle(document.documentElement).getPropertyValue('--bad').trim(),
             stalls: [...document.querySelectorAll('#stalls li')].map((li) => ({ order: li.dataset.order, text: li.textContent })),
             href: document.getElementById('trace-download').getAttribute('href'),
             orders: +c.dataset.orders };
  });
  assert.match(got.rows[0], /loop/, 'the loop first');
  assert.equal(got.rows.filter((n) => n.includes('worker')).length, 8, 'the eight workers');
  assert.ok(got.brew.dur >= 1000 * 1000, 'the brew at scale 1 held the loop 1 s or more: ' + got.brew.dur + ' us');
  const hex = '#' + got.px.slice(0, 3).map((v) => v.toString(16).padStart(2, '0')).join('');
  assert.equal(hex, got.bad, 'the brew drawn on the loop row in red');
  assert.ok(got.orders > 0, 'orders drawn');
  // The stall beside the lag counter names the brew and its order.
  await page.waitForSelector('#stalls li');
  const stall = got.stalls.find((st) => st.order === String(got.brew.args.order_id));
  assert.ok(stall, 'the brew\'s stall is listed: ' + JSON.stringify(got.stalls));
  assert.match(stall.text, /brew .*order \d+ \(mixed, brew_coffee\)/);
  await page.locator('#loopview').screenshot({ path: path.join(artifacts, 'loop-view.png') });
  assert.equal(got.href, 'trace?seconds=60');
  const r = await fetch(base + '/' + got.href);
  assert.equal(r.status, 200);
  assert.ok(Array.isArray((await r.json()).traceEvents));
});

test('the trace opens in speedscope, a viewer no one here wrote', async () => {
  const trace = await (await fetch(base + '/trace?seconds=60')).text();
  const dir = mkdtempSync(path.join(tmpdir(), 'coffee-speedscope-'));
  const js = path.join(dir, 'load.js');
  writeFileSync(js, `speedscope.loadFileFromBase64("coffee-trace.json", ${JSON.stringify(Buffer.from(trace).toString('base64'))})`);
  const viewer = await context.newPage();
  const messages = [], errors = [];
  viewer.on('console', (m) => messages.push(m.type() + ': ' + m.text()));
  viewer.on('pageerror', (e) => errors.push(String(e)));
  viewer.on('dialog', (d) => { errors.push('dialog: ' + d.message()); d.dismiss(); });
  try {
    const index = path.resolve('node_modules/speedscope/dist/release/index.html');
    await viewer.goto('file://' + index + '#localProfilePath=' + js);
    await viewer.waitForFunction(() => / - speedscope$/.test(document.title) || document.body.textContent.includes('went wrong'),
      null, { timeout: 20000 });
    assert.equal(await viewer.title(), 'coffee-trace.json - speedscope');
    assert.ok(!(await viewer.textContent('body')).includes('Something went wrong'));
    assert.deepEqual(errors, []);
    assert.ok(messages.some((m) => /Importing as (Chrome Timeline|Trace Event Format)/.test(m)), messages.join('\n'));
    assert.deepEqual(messages.filter((m) => /Tried to end frame|still open|Unexpected|Empty profile/.test(m)), []);
  } finally {
    await viewer.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('live counters: from /metrics, or "metrics unavailable" without it', async () => {
  const status = (await fetch(base + '/metrics')).status;
  if (status === 200) {
    await page.waitForSelector('#metrics[data-state=ok]');
    // Counters are polled: wait for the async orders above to be counted.
    await page.waitForFunction(() => {
      const td = document.querySelector('[data-metric="orders:async:done"]');
      return td && +td.textContent >= 2;
    });
  } else {
    await page.waitForSelector('#metrics[data-state=unavailable]');
    assert.match(await page.textContent('#metrics'), /metrics unavailable/);
  }
});

test('screenshot', async () => {
  await page.screenshot({ path: path.join(artifacts, 'page.png'), fullPage: true });
});

// The panel's parsing, on a known /metrics answer (whatever the server has).
const SAMPLE_METRICS = `# HELP coffee_orders_total Orders answered, by mode and status.
# TYPE coffee_orders_total counter
coffee_orders_total{mode="async",status="done"} 1234
coffee_orders_total{mode="blocking",status="done"} 3
coffee_orders_total{mode="blocking",status="failed"} 1
# TYPE coffee_orders_in_flight gauge
coffee_orders_in_flight{mode="async"} 2
coffee_orders_in_flight{mode="blocking"} 0
coffee_db_pool_connections{state="busy"} 3
coffee_db_pool_connections{state="connected"} 5
coffee_db_pool_connections{state="size"} 32
coffee_blocking_workers{state="busy"} 4
coffee_blocking_workers{state="total"} 8
coffee_db_pool_waiting 6
coffee_loop_lag_max_seconds 0.0625
`;
test('live counters drawn from Prometheus text', async () => {
  await page.route('**/metrics', (route) =>
    route.fulfill({ status: 200, contentType: 'text/plain; version=0.0.4', body: SAMPLE_METRICS }));
  try {
    await page.waitForFunction(() => {
      const td = document.querySelector('[data-metric="orders:async:done"]');
      return td && td.textContent === '1234';
    });
    const cell = (k) => page.textContent(`[data-metric="${k}"]`);
    assert.equal(await cell('orders:blocking:failed'), '1');
    assert.equal(await cell('in_flight:async'), '2');
    assert.equal(await cell('lag'), '63 ms');
    assert.match(await page.getAttribute('[data-metric=lag]', 'class'), /\bbad\b/);
    const text = await page.textContent('#metrics');
    assert.match(text, /busy 3 of 32 · connected 5 · waiting 6/);
    assert.match(text, /busy 4 of 8/);
    assert.doesNotMatch(text, /null|undefined|NaN/);
  } finally {
    await page.unroute('**/metrics');
  }
});

// Main's coming /compare?modes=a,b,c answers one key per mode: the page
// draws every key whose value is an order. Until the server takes modes,
// the answer is made here from orders this test already ran.
test('compare of three modes draws one timeline per mode', async () => {
  const seen = await page.evaluate(() => window.coffee.runs.flatMap((r) => r.orders || []));
  const pick = (m) => seen.find((o) => o.mode === m);
  await page.route('**/compare?*', async (route) => {
    const real = await route.fetch();
    if (real.status() === 200) return route.fulfill({ response: real });
    const body = { blocking: pick('blocking'), mixed: pick('mixed'), async: pick('async') };
    body.speedup = Math.round(body.blocking.elapsed_ms / body.async.elapsed_ms * 1000) / 1000;
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  });
  try {
    await page.check('.pick input[value=mixed]');
    const run = await clickAndWait('#btn-compare', '.run[data-kind=compare]');
    assert.match(await run.locator('.run-head code').textContent(), /modes=blocking%2Cmixed%2Casync|modes=blocking,mixed,async/);
    assert.deepEqual(await run.locator('.order').evaluateAll((els) => els.map((e) => e.dataset.mode)),
                     ['blocking', 'mixed', 'async']);
    for (const i of [0, 1, 2]) checkGeometry(await drawn(`.run[data-kind=compare] >> nth=0 >> .order >> nth=${i}`));
    assert.match(await run.locator('.speedup').textContent(), /\(blocking ÷ async\)/);
  } finally {
    await page.uncheck('.pick input[value=mixed]');
    await page.unroute('**/compare?*');
  }
});

// ---- recipes: the picker and the editor -----------------------------------

test('the recipe picker lists GET /recipes and draws the chosen recipe; orders follow it', async () => {
  const listed = (await (await fetch(base + '/recipes')).json()).recipes.map((r) => r.name);
  await page.waitForFunction((n) => document.querySelectorAll('#recipe-pick option').length >= n, listed.length);
  assert.deepEqual(await page.$$eval('#recipe-pick option', (els) => els.map((e) => e.value)), listed);
  await page.selectOption('#recipe-pick', 'gather');
  await page.waitForFunction(() => document.querySelectorAll('#recipe-svg text[data-step]').length === 3);
  assert.equal(await page.textContent('.recipe text[data-step=B]'), 'HTTP · 4 s');
  assert.equal(await page.textContent('#recipe-crit'), '4 s');
  assert.equal(await page.textContent('#recipe-seq'), '7 s');
  assert.equal(await page.locator('#recipe-svg path[d^="M"]').count(), 1, 'no arrow but the marker: A, B, C at once');
  // The mode cards expect what /workflow?recipe=gather says.
  const w = await (await fetch(base + '/workflow?recipe=gather')).json();
  for (const c of await modeCards(page))
    assert.equal(c.factor, w.modes.find((m) => m.name === c.name).expected_ms, c.name);
  await page.fill('#scale', SCALE);
  await clickAndWait('#btn-async', '.run[data-kind=order] .order[data-mode=async]');
  const d = await drawn('.run[data-kind=order] .order[data-mode=async] >> nth=0');
  assert.equal(d.json.recipe, 'gather');
  assert.deepEqual(d.json.result, ['A1', 'B2', 'C3']);
  assert.deepEqual(d.json.completed, ['C', 'A', 'B']);
  checkGeometry(d);
  assert.match(d.head, /A1, B2, C3 · ended C → A → B/);
  await page.selectOption('#recipe-pick', 'coffee');
  await page.waitForFunction(() => document.querySelectorAll('#recipe-svg text[data-step]').length === 4);
  assert.equal(await page.textContent('#recipe-crit'), '4 s');
  assert.equal(await page.textContent('#recipe-seq'), '6.9 s');
});

test('the recipe editor draws as it parses, shows the server\'s 400, saves a recipe that then races', async () => {
  await page.click('#recipe-editor summary');
  const mine = { name: 'eggs_first', lesson: 'eggs after the pan', steps: [
    { name: 'pan', io: 'http', after: [], planned_ms: 1000, calls: '/task', returns: 'Hot pan' },
    { name: 'eggs', io: 'http', after: ['pan'], planned_ms: 2000, calls: '/task', returns: 'Eggs' },
    { name: 'juice', io: 'http', after: [], planned_ms: 500, calls: '/task', returns: 'Juice' }] };
  await page.fill('#recipe-json', '{"name": "eggs_first", "steps": [');
  await page.waitForFunction(() => /not JSON yet/.test(document.getElementById('recipe-edit-state').textContent));
  await page.fill('#recipe-json', JSON.stringify(mine));
  await page.waitForFunction(() => document.querySelectorAll('#recipe-svg text[data-step]').length === 3);
  assert.equal(await page.locator('#recipe-svg g[stroke] path').count(), 1, 'one arrow: pan -> eggs');
  // A cycle: drawn as far as it goes, refused by the server, which names it.
  const bad = JSON.parse(JSON.stringify(mine));
  bad.steps[0].after = ['eggs'];
  await page.fill('#recipe-json', JSON.stringify(bad));
  await page.click('#recipe-save');
  await page.waitForSelector('#recipe-edit-state[data-status="400"]');
  assert.match(await page.textContent('#recipe-edit-state'), /HTTP 400: .*cycle/);
  assert.equal((await fetch(base + '/workflow?recipe=eggs_first')).status, 404, 'nothing stored');
  await page.fill('#recipe-json', JSON.stringify(mine));
  await page.click('#recipe-save');
  await page.waitForSelector('#recipe-edit-state[data-status="201"]');
  assert.equal(await page.inputValue('#recipe-pick'), 'eggs_first');
  assert.equal(await page.textContent('#recipe-crit'), '3 s');
  await page.fill('#scale', SCALE);
  for (const mode of ['async', 'blocking']) {
    await clickAndWait('#btn-' + mode, `.run[data-kind=order] .order[data-mode=${mode}]`);
    const d = await drawn(`.run[data-kind=order] .order[data-mode=${mode}] >> nth=0`);
    assert.equal(d.json.recipe, 'eggs_first');
    assert.equal(d.json.status, 'done');
    assert.deepEqual(d.json.result, ['Hot pan', 'Eggs', 'Juice']);
    checkGeometry(d);
  }
  // A rush of it.
  await page.fill('#rush-customers', '5');
  await page.fill('#rush-scale', SCALE);
  await page.click('#btn-rush');
  await page.waitForFunction(() => window.coffee.rush.done, null, { timeout: 60000 });
  await page.selectOption('#recipe-pick', 'coffee');
  await page.waitForFunction(() => document.querySelectorAll('#recipe-svg text[data-step]').length === 4);
});

test('clear empties the history', async () => {
  await page.click('#clear');
  await page.waitForSelector('#runs .empty');
  assert.equal(await page.locator('.run').count(), 0);
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
});
