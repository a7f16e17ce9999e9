// Review s40 (secrets): a request target with a raw `#` is refused (400), but its log line keeps
// what follows the `#` when there is no `?` before it. OAuth's implicit flow puts the token there
// (`/callback#access_token=…`); with a `?` first the same line is cut at the `?`, so only a
// fragment right after the path reaches the log. The log must show the path only (`logQuery: false`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay } from '../src/index.js';

const secret = 'SECRET-TOKEN-42';

test('a refused target with a fragment: the warn line shows the path without the fragment (origin-form and absolute-form)', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger }));
  try {
    const heads = [
      `GET /callback#access_token=${secret} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`,
      `GET http://gw/callback#access_token=${secret} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`,
    ];
    for (const head of heads) {
      const raw = await sendRaw(served.port, head, 1000);
      assert.match(raw, /^HTTP\/1\.1 400 /, 'the fragment is refused');
    }
    assert.is(upstream.requests.length, 0, 'the upstream saw nothing');
    const lines = logger.lines.filter((line) => line.fields.code === 'ERR_BAD_PATH');
    assert.is(lines.length, 2, `each refusal is logged: ${JSON.stringify(logger.lines)}`);
    assert.not.ok(JSON.stringify(logger.lines).includes(secret), `a log line shows the fragment's token: ${JSON.stringify(lines)}`);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
