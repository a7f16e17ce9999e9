// Review s39b: transformResponse drops Range for the whole route; what the client is told about ranges.
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { transformResponse, transformResponseStream } from '../src/index.js';

const png = Buffer.alloc(4096, 7);

/** An upstream that serves ranges of a PNG and of a large HTML page, and says so. */
async function rangedUpstream() {
  return startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const body = req.url === '/big.html' ? Buffer.alloc(4096, 0x61) : png;
    const type = req.url === '/big.html' ? 'text/html' : 'image/png';
    const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
    if (range) {
      const [start, end] = [Number(range[1]), Number(range[2])];
      res.writeHead(206, { 'content-type': type, 'accept-ranges': 'bytes', 'content-range': `bytes ${start}-${end}/${body.length}` });
      res.end(body.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'content-type': type, 'accept-ranges': 'bytes', 'content-length': body.length });
    res.end(body);
  });
}

test('a response the transform leaves alone (another type, or over maxBytes) does not advertise Accept-Ranges the route then ignores', async () => {
  const upstream = await rangedUpstream();
  const wrong: string[] = [];
  for (const stage of [transformResponse((text: string) => text, { maxBytes: 1024 }), transformResponseStream(() => null)]) {
    const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [stage] }));
    try {
      for (const path of ['/logo.png', '/big.html']) {
        const whole = await fetchRaw(`${relay.url}${path}`);
        const ranged = await fetchRaw(`${relay.url}${path}`, { headers: { range: 'bytes=0-99' } });
        // Either ranges work (206), or the relay does not say they do (RFC 9110 §14.3).
        const consistent = ranged.status === 206 || whole.headers['accept-ranges'] === undefined;
        if (!consistent) wrong.push(`${stage.name} ${path}: Accept-Ranges: ${whole.headers['accept-ranges']}, but Range: bytes=0-99 got ${ranged.status}`);
      }
    } finally {
      await relay.close();
    }
  }
  await upstream.close();
  assert.equal(wrong, []);
});

test.run();
