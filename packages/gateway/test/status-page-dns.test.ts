// The status page in headless Chromium (as status-page.test.ts) for a pool of a `{ dns }` target:
// each resolved address is shown with the name it came from, so an operator can tell which name an
// address belongs to.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, memoryLogger, startUpstream } from '@relay/testkit';
import { createGateway, loadConfig } from '../src/index.js';
import { configDir } from './bin.js';

const chromiumPath = '/usr/bin/chromium';
const files = configDir();
const profile = mkdtempSync(join(tmpdir(), 'relay-chromium-'));

test.after(() => {
  files.cleanup();
  rmSync(profile, { recursive: true, force: true });
});

test('a dns target\'s addresses are shown with their name: "(dns: http://localhost:PORT)"', async () => {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium (.ci/run does)`);
  const upstream = await startUpstream((_req, res) => res.end('up'));
  const other = await startUpstream((_req, res) => res.end('other'));
  const dns = `http://localhost:${upstream.port}`;
  const path = files.write(
    'gateway.yaml',
    ['listen: [{ port: 0 }]', 'status: { path: /_relay/status }', 'routes:', '  - name: api', `    upstream: [{ dns: "${dns}", interval: 60000 }, ${other.url}]`, ''].join('\n'),
  );
  const gateway = createGateway(await loadConfig(path), { logger: memoryLogger() });
  await gateway.startup();
  const server = createServer(gateway.handle);
  const base = await listen(server);
  let browser: BrowserContext | null = null;
  try {
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    await page.goto(`${base}/_relay/status`);
    await page.waitForSelector('tr[data-route="api"] .target', { timeout: 20_000 });
    const lines = await page.locator('tr[data-route="api"] .target').allTextContents();
    const resolved = lines.filter((line) => line !== `${other.url} · healthy`);
    assert.ok(resolved.length > 0, JSON.stringify(lines));
    for (const line of resolved) assert.ok(line.includes(` (dns: ${dns}) · healthy`), line);
    assert.ok(lines.includes(`${other.url} · healthy`), `a URL target names no dns: ${JSON.stringify(lines)}`);
  } finally {
    await browser?.close();
    await close(server);
    await gateway.shutdown(1_000);
    await upstream.close();
    await other.close();
  }
});

test.run();
