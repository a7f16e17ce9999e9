// docs/gateway.md, "Several upstreams": examples/gateway-balance.yaml is the block on the page, and
// the real bin runs it against three upstreams: the weights, the path prefix and the health checks.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { runBin, startBin, type ServingBin } from '../../packages/gateway/test/bin.js';

const root = new URL('../..', import.meta.url).pathname;
const exampleFile = join(root, 'examples/gateway-balance.yaml');
const replicas: Upstream[] = [];
let gateway: ServingBin;

test.before(async () => {
  for (const name of ['one', 'two', 'three']) replicas.push(await startUpstream((req, res) => res.end(req.url === '/health' ? 'ok' : name)));
  const env = { PORT: '0', API_1: replicas[0]!.url, API_2: replicas[1]!.url, API_3: replicas[2]!.url };
  gateway = await startBin(['serve', exampleFile], { env });
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  await Promise.all(replicas.map((replica) => replica.close()));
});

test('docs/gateway.md shows examples/gateway-balance.yaml as it is; relay check passes', async () => {
  const page = readFileSync(join(root, 'docs/gateway.md'), 'utf8');
  const block = /```yaml\n# Three replicas behind one route[\s\S]*?```/.exec(page);
  assert.ok(block !== null, 'the page has the example block');
  assert.is(block[0].slice('```yaml\n'.length, -3), readFileSync(exampleFile, 'utf8'));
  const check = await runBin(['check', 'examples/gateway-balance.yaml']);
  assert.is(check.code, 0, check.stderr);
});

test('the pool: the third replica gets twice the share, every target is asked under /v1 and health-checked', async () => {
  const names: string[] = [];
  for (let i = 0; i < 8; i++) names.push((await fetchRaw(`${gateway.url}/api/users`)).text);
  assert.equal(['one', 'two', 'three'].map((name) => names.filter((seen) => seen === name).length), [2, 2, 4]);
  assert.ok(replicas.every((replica) => replica.requests.some((seen) => seen.url === '/v1/users')));
  assert.ok(await waitFor(() => replicas.every((replica) => replica.requests.some((seen) => seen.url === '/health'))), 'every replica was health-checked');
});

test.run();
