// The status page in a real browser: Debian's Chromium, headless, driven by playwright-core,
// loads the page while traffic runs, sees the routes, and sees a target turn unhealthy when its
// upstream stops. RELAY_SCREENSHOT=1 writes the screenshot docs/gateway.md shows
// (docs/gateway-status.png); otherwise it goes to a temporary folder.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream, type Upstream } from '@relay/testkit';
import { configDir, startBin, type ServingBin } from './bin.js';

const chromiumPath = '/usr/bin/chromium';
const root = new URL('../../..', import.meta.url).pathname;
const files = configDir();
const profile = mkdtempSync(join(tmpdir(), 'relay-chromium-'));
let orders: Upstream;
let users: Upstream;
let gateway: ServingBin;
let browser: BrowserContext | null = null;
let traffic: Promise<void> | null = null;
let trafficOn = true;

/** Bounded background traffic on both routes: at most 3 000 requests, a few ms apart, until stopped. */
async function runTraffic(): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  for (let i = 0; i < 3_000 && trafficOn; i++) {
    await new Promise<void>((resolve) => {
      const req = request(`${gateway.url}/${i % 2 === 0 ? 'orders' : 'users'}/item/${i}`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  agent.destroy();
}

test.before(async () => {
  orders = await startUpstream((_req, res) => res.end('order'));
  users = await startUpstream((_req, res) => res.end('user'));
  const config = files.write(
    'gateway.yaml',
    [
      'listen: [{ host: 127.0.0.1, port: 0 }]',
      'status: { path: /_relay/status }',
      'routes:',
      '  - name: orders',
      '    match: { path: /orders }',
      `    upstream: ${orders.url}`,
      '  - name: users',
      '    match: { path: /users, methods: [GET, POST] }',
      `    upstream: ${users.url}`,
      '    retry: { maxRetries: 1, backoffFactor: 10 }',
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config]);
  traffic = runTraffic();
});

test.after(async () => {
  trafficOn = false;
  await traffic;
  await browser?.close();
  await gateway?.stop('SIGKILL');
  await orders.close();
  await users.close();
  files.cleanup();
  rmSync(profile, { recursive: true, force: true });
});

test('the status page in Chromium: routes, traffic, and a target turning unhealthy', async () => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium (.ci/run does)`);
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 300 },
  });
  const page = await browser.newPage();
  await page.goto(`${gateway.url}/_relay/status`);
  await page.waitForSelector('tr[data-route="users"] [data-health="healthy"]', { timeout: 20_000 });
  const routes = await page.locator('tr[data-route]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-route')));
  assert.equal(routes, ['orders', 'users']);
  const ordersRow = await page.textContent('tr[data-route="orders"]');
  assert.match(ordersRow ?? '', new RegExp(orders.url.replace(/[.:/]/g, '\\$&')));

  await users.close();
  await page.waitForSelector('tr[data-route="users"] [data-health="unhealthy"]', { timeout: 20_000 });
  const usersRow = (await page.textContent('tr[data-route="users"]')) ?? '';
  assert.match(usersRow, /unhealthy \(ERR_UPSTREAM_UNREACHABLE\)/);
  // The row's errors per minute count the 502s (the page polls every second).
  await page.waitForFunction("Number(document.querySelector('tr[data-route=users] td:nth-child(5)')?.textContent ?? 0) > 0", undefined, {
    timeout: 20_000,
  });
  assert.is(await page.getAttribute('tr[data-route="orders"] .target', 'data-health'), 'healthy');

  const screenshot = process.env.RELAY_SCREENSHOT === '1' ? join(root, 'docs/gateway-status.png') : join(profile, 'status.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  assert.ok(existsSync(screenshot));
});

test.run();
