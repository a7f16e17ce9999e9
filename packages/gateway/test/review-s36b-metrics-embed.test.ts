// Review s36b (gateway, issue 19): `/metrics` of a gateway embedded with `serve()` (packages/gateway/README.md
// "In code": exported "for embedding the gateway or testing a config"). A program that stops its gateway and
// serves again in the same process (a listen change needs a restart; a test suite; a supervisor) gets a
// /metrics that must describe the gateway that answers it, not the first one the process started.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, startUpstream } from '@relay/testkit';
import { serve } from '../src/index.js';
import { configDir } from './bin.js';

test('a second serve() in the same process: its /metrics counts its own routes, not the stopped first gateway\'s', async () => {
  const files = configDir();
  const api = await startUpstream();
  const config = (name: string) => ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', `  - name: ${name}`, `    upstream: ${api.url}`, ''].join('\n');
  try {
    const first = await serve({ config: files.write('first.yaml', config('first')), logger: memoryLogger() as never, watch: false });
    const firstPort = (first.servers[0]!.address() as { port: number }).port;
    assert.is((await fetchRaw(`http://127.0.0.1:${firstPort}/x`)).status, 200);
    await first.stop();
    const second = await serve({ config: files.write('second.yaml', config('second')), logger: memoryLogger() as never, watch: false });
    try {
      const port = (second.servers[0]!.address() as { port: number }).port;
      for (let i = 0; i < 2; i++) assert.is((await fetchRaw(`http://127.0.0.1:${port}/x`)).status, 200);
      const text = (await fetchRaw(`http://127.0.0.1:${port}/metrics`)).text;
      assert.match(text, /^relay_gateway_requests_total\{route="second"\} 2$/m, 'the serving gateway\'s route is counted');
      assert.not.match(text, /route="first"/, 'the stopped gateway\'s route is still published');
    } finally {
      await second.stop();
    }
  } finally {
    await api.close();
    files.cleanup();
  }
});

test.run();
