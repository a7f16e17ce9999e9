// Rate limits across in-process reloads (createGateway + reload), on real sockets: an unchanged
// limit keeps its clients' counts, a changed one starts afresh, a removed one is forgotten.
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, startUpstream, type Upstream } from '@relay/testkit';
import { createGateway, loadConfig, type Gateway } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { configDir } from './bin.js';

const files = configDir();
const logger = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });
let upstream: Upstream;

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await upstream.close();
  files.cleanup();
});

async function config(limit: string | null) {
  const lines = ['listen: [{ port: 0 }]', 'routes:', '  - name: api', `    upstream: ${upstream.url}`];
  if (limit !== null) lines.push(`    rateLimit: ${limit}`);
  return loadConfig(files.write(`gateway-${Math.random().toString(36).slice(2)}.yaml`, [...lines, ''].join('\n')));
}

async function withGateway(run: (gateway: Gateway, status: () => Promise<number>) => Promise<void>) {
  const gateway = createGateway(await config('{ points: 2, duration: 60000 }'), { logger });
  await gateway.startup();
  const server = createServer(gateway.handle);
  const base = await listen(server);
  try {
    await run(gateway, async () => (await fetchRaw(`${base}/a`)).status);
  } finally {
    await close(server);
    await gateway.shutdown(500);
  }
}

test('a reload of an unchanged rateLimit keeps the clients\' counts (as nginx keeps limit_req zones)', async () => {
  await withGateway(async (gateway, status) => {
    assert.equal([await status(), await status(), await status()], [200, 200, 429]);
    await gateway.reload(await config('{ points: 2, duration: 60000 }'));
    assert.is(await status(), 429, 'the reload handed the client a fresh budget');
  });
});

test('a changed rateLimit starts with fresh counts; removing it drops its store', async () => {
  await withGateway(async (gateway, status) => {
    assert.equal([await status(), await status(), await status()], [200, 200, 429]);
    await gateway.reload(await config('{ points: 3, duration: 60000 }'));
    assert.is(await status(), 200, 'a changed limit kept the old counts');
    assert.is(gateway.shared.kept.size, 1);
    await gateway.reload(await config(null));
    assert.is(gateway.shared.kept.size, 0, 'a store no route uses is kept');
  });
});

test.run();
