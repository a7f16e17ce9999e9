// The primary's limit store of `relay serve --workers 2` (cluster-limits.ts), black box: several limits on one route
// count as in one process, where a request a limit further in refuses gives back the tokens the limits before it took
// (nginx's several limit_req). The refund crosses the IPC channel from whichever worker served the request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, startUpstream, type Upstream } from '@relay/testkit';
import { configDir, startBin, type ServingBin } from './bin.js';

const files = configDir();
let upstream: Upstream;
let gateway: ServingBin;

test.before(async () => {
  upstream = await startUpstream();
  const config = files.write(
    'cluster-limits.yaml',
    [
      'listen: [{ host: 127.0.0.1, port: 0 }]',
      'routes:',
      '  - name: api',
      '    match: { path: /api }',
      `    upstream: ${upstream.url}`,
      '    rateLimit:',
      '      - { name: global, key: route, points: 5, duration: 3600000 }',
      '      - { name: per-key, key: { header: x-api-key }, points: 2, duration: 3600000 }',
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config, '--workers', '2'], { listeningCount: 2 });
});

test.after(async () => {
  await gateway?.stop('SIGTERM');
  await upstream.close();
  files.cleanup();
});

test('global then per key over two workers: the requests the per-key limit refuses give the global token back in the primary', async () => {
  // A new connection per request (fetchRaw): the two workers share them, so refunds come from both.
  const abusive: number[] = [];
  for (let i = 0; i < 12; i++) abusive.push((await fetchRaw(`${gateway.url}/api`, { headers: { 'x-api-key': 'abuser' } })).status);
  assert.equal(abusive, [200, 200, 429, 429, 429, 429, 429, 429, 429, 429, 429, 429], 'the abusive key gets its 2');
  const honest = await fetchRaw(`${gateway.url}/api`, { headers: { 'x-api-key': 'honest' } });
  assert.is(honest.status, 200, 'the route let 2 of its 5 through: another key is not refused');
  assert.match(String(honest.headers.ratelimit), /"global";r=2;/, 'global: 5 - 2 let through - this one');
  assert.is(upstream.requests.length, 3);
});

test.run();
