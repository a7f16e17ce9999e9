// Review s40 (secrets): accessLog() redacts a query by default, but a refused target whose `#`
// comes with no `?` before it is logged whole: `/callback#access_token=…` (OAuth's implicit flow)
// reaches the access log with its token, while `/callback?x=1#access_token=…` is cut at the `?`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { observe } from '../src/index.js';

const secret = 'SECRET-TOKEN-42';

test('the access line of a target refused for its fragment carries no fragment (JSON and combined)', async () => {
  const upstream = await startUpstream();
  try {
    for (const format of ['json', 'combined'] as const) {
      const lines: string[] = [];
      const parts = observe({ accessLog: { format, stream: { write: (line: string) => void lines.push(line) } } });
      const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [parts.request] }));
      try {
        const raw = await sendRaw(served.port, `GET /callback#access_token=${secret} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`, 1000);
        assert.match(raw, /^HTTP\/1\.1 400 /);
        assert.is(lines.length, 1, `one access line (${format}): ${lines.join('')}`);
        assert.match(lines[0]!, /\/callback/);
        assert.not.ok(lines[0]!.includes(secret), `the ${format} access line shows the fragment's token: ${lines[0]}`);
      } finally {
        await served.close();
      }
    }
  } finally {
    await upstream.close();
  }
});

test.run();
