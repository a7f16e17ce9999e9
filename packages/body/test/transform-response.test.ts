import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { delay, fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor, type MemoryLogger, type Upstream } from '@relay/testkit';
import { transformResponse, transformResponseStream } from '../src/index.js';

const data = { user: 'ada', internalId: 'u-123', items: Array.from({ length: 50 }, (_, i) => ({ id: i, note: 'x'.repeat(20) })) };
const gzippedJson = zlib.gzipSync(JSON.stringify(data));
const html = '<html><body><a href="http://api.internal/docs">docs</a></body></html>';
const bigText = 'y'.repeat(300_000);

/** An upstream with one route per case; it records the Range and Accept-Encoding headers it saw. */
async function upstreamForTransforms(ranges: Array<string | undefined>): Promise<Upstream> {
  return startUpstream((req: IncomingMessage, res: ServerResponse) => {
    ranges.push(req.headers.range, req.headers['accept-encoding']);
    const send = (status: number, headers: Record<string, string | number>, body?: Buffer | string) => {
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    switch (req.url) {
      case '/gzip-json':
        return send(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzippedJson.length, etag: '"abc"', 'content-md5': 'xyz' }, gzippedJson);
      case '/br-html': {
        const body = zlib.brotliCompressSync(html);
        return send(200, { 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'br', 'content-length': body.length }, body);
      }
      case '/deflate-html': {
        const body = zlib.deflateSync(html);
        return send(200, { 'content-type': 'text/html', 'content-encoding': 'deflate', 'content-length': body.length }, body);
      }
      case '/ranged-html':
        return send(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html), 'accept-ranges': 'bytes' }, html);
      case '/corrupt':
        return send(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': 10 }, Buffer.from('not gzip!!'));
      case '/partial':
        // An upstream that answers a range whatever it was asked (or a stage inside that asked one).
        return send(206, { 'content-type': 'text/html', 'content-range': `bytes 0-9/${Buffer.byteLength(html)}`, 'content-length': 10 }, html.slice(0, 10));
      case '/png':
        return send(200, { 'content-type': 'image/png', 'content-length': 4 }, Buffer.from([1, 2, 3, 4]));
      case '/big':
        return send(200, { 'content-type': 'text/plain', 'content-length': bigText.length }, bigText);
      case '/big-chunked':
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (let i = 0; i < 30; i++) res.write(bigText.slice(i * 10_000, (i + 1) * 10_000));
        return res.end();
      case '/events':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        return res.end('data: x\n\n');
      case '/sjis':
        return send(200, { 'content-type': 'text/plain; charset=shift_jis', 'content-length': 3 }, 'abc');
      case '/zstd':
        return send(200, { 'content-type': 'text/plain', 'content-encoding': 'zstd', 'content-length': 3 }, 'abc');
      case '/204':
        return send(204, { 'content-type': 'text/plain' });
      case '/304':
        return send(304, { 'content-type': 'text/plain', etag: '"e"' });
      default:
        return send(200, { 'content-type': 'text/plain', 'content-length': 5 }, 'plain');
    }
  });
}

async function withRelay(stages: Stage[], run: (url: string, logger: MemoryLogger, ranges: Array<string | undefined>) => Promise<void>): Promise<void> {
  const ranges: Array<string | undefined> = [];
  const upstream = await upstreamForTransforms(ranges);
  const logger = memoryLogger();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages }));
  try {
    await run(relay.url, logger, ranges);
  } finally {
    await relay.close();
    await upstream.close();
  }
}

test('a gzip JSON response is rewritten and stays valid gzip with the right length; stale validators go', async () => {
  const stage = transformResponse((body: any) => ({ ...body, internalId: undefined, rewritten: true }), { as: 'json' });
  await withRelay([stage], async (url) => {
    const response = await fetchRaw(`${url}/gzip-json`);
    assert.is(response.status, 200);
    assert.is(response.headers['content-encoding'], 'gzip');
    assert.is(response.headers['content-length'], String(response.body.length));
    assert.is(response.headers.etag, undefined);
    assert.is(response.headers['content-md5'], undefined);
    const decoded = JSON.parse(zlib.gunzipSync(response.body).toString());
    assert.equal(decoded, { user: 'ada', items: data.items, rewritten: true });
  });
});

test('br and deflate text bodies are rewritten and encoded again with their own coding', async () => {
  const stage = transformResponse((text) => text.replaceAll('http://api.internal', 'https://api.example.com'));
  await withRelay([stage], async (url) => {
    const br = await fetchRaw(`${url}/br-html`);
    assert.is(br.headers['content-encoding'], 'br');
    assert.is(br.headers['content-length'], String(br.body.length));
    assert.match(zlib.brotliDecompressSync(br.body).toString(), 'href="https://api.example.com/docs"');
    const deflate = await fetchRaw(`${url}/deflate-html`);
    assert.is(deflate.headers['content-encoding'], 'deflate');
    assert.match(zlib.inflateSync(deflate.body).toString(), 'https://api.example.com/docs');
  });
});

test('other types, charsets and codings, event streams, over-limit bodies, 204 and 304 pass untouched, HEAD states no length its GET would not have; fn is never called', async () => {
  let calls = 0;
  const stage = transformResponse(
    (text) => {
      calls++;
      return text.toUpperCase();
    },
    { maxBytes: 100_000 },
  );
  await withRelay([stage], async (url) => {
    const png = await fetchRaw(`${url}/png`);
    assert.equal([...png.body], [1, 2, 3, 4]);
    const big = await fetchRaw(`${url}/big`);
    assert.is(big.text, bigText);
    assert.is(big.headers['content-length'], String(bigText.length));
    // Chunked: read up to the limit, then handed on whole, the bytes already read first.
    const chunked = await fetchRaw(`${url}/big-chunked`);
    assert.is(chunked.text, bigText);
    const events = await fetchRaw(`${url}/events`);
    assert.is(events.text, 'data: x\n\n');
    // Its GET is rewritten: the upstream's length is not the GET's (RFC 9110 §9.3.2), and fn is not called for HEAD.
    const head = await fetchRaw(`${url}/plain`, { method: 'HEAD' });
    assert.is(head.headers['content-length'], undefined);
    const pngHead = await fetchRaw(`${url}/png`, { method: 'HEAD' });
    assert.is(pngHead.headers['content-length'], '4', 'a type the GET leaves alone keeps its length');
    assert.is((await fetchRaw(`${url}/sjis`)).text, 'abc');
    assert.is((await fetchRaw(`${url}/zstd`)).text, 'abc');
    assert.is((await fetchRaw(`${url}/204`)).status, 204);
    assert.is((await fetchRaw(`${url}/304`)).status, 304);
    assert.is(calls, 0);
    assert.is((await fetchRaw(`${url}/plain`)).text, 'PLAIN');
    assert.is(calls, 1);
  });
});

test('returning undefined keeps the body byte for byte; Range is not forwarded, nor codings the transform cannot decode', async () => {
  const stage = transformResponse(() => undefined, { as: 'bytes' });
  await withRelay([stage], async (url, _logger, seen) => {
    const response = await fetchRaw(`${url}/gzip-json`, { headers: { range: 'bytes=0-10', 'accept-encoding': 'zstd, gzip;q=0.8, *;q=0.1' } });
    assert.is(response.status, 200);
    assert.ok(response.body.equals(gzippedJson));
    assert.is(response.headers.etag, '"abc"');
    assert.equal(seen, [undefined, 'gzip;q=0.8']);
    await fetchRaw(`${url}/plain`, { headers: { 'accept-encoding': 'zstd' } });
    assert.equal(seen.slice(2), [undefined, undefined]);
  });
});

test('a body the stage reads says no Accept-Ranges, rewritten or not, as its HEAD: the route drops Range, so it always comes whole', async () => {
  // A download manager or media element told `Accept-Ranges: bytes` asks for a range and gets the whole body; and
  // HEAD and GET would disagree (RFC 9110 §9.3.2). nginx's sub_filter and gzip filters clear it too.
  const rewrite = transformResponse((text) => text.replaceAll('http://api.internal', 'https://api.example.com'));
  const keep = transformResponse(() => undefined);
  for (const stage of [rewrite, keep]) {
    await withRelay([stage], async (url) => {
      const get = await fetchRaw(`${url}/ranged-html`);
      assert.is(get.status, 200);
      assert.is(get.headers['accept-ranges'], undefined);
      const ranged = await fetchRaw(`${url}/ranged-html`, { headers: { range: 'bytes=0-9' } });
      assert.is(ranged.status, 200);
      assert.is(ranged.body.length, get.body.length);
      const head = await fetchRaw(`${url}/ranged-html`, { method: 'HEAD' });
      assert.is(head.headers['accept-ranges'], get.headers['accept-ranges']);
    });
  }
});

const png = Buffer.alloc(4096, 7);

/** An upstream that serves ranges of a PNG and of a large HTML page, and says so. */
async function rangedUpstream(): Promise<Upstream> {
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

test('a response the transform leaves alone (another type, over maxBytes, a null factory) does not advertise Accept-Ranges the route ignores', async () => {
  const upstream = await rangedUpstream();
  const wrong: string[] = [];
  const stages = [
    transformResponse((text: string) => text, { maxBytes: 1024 }),
    transformResponse((text: string) => text, { types: ['application/json'] }),
    transformResponseStream(() => null),
  ];
  for (const stage of stages) {
    const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [stage] }));
    try {
      for (const path of ['/logo.png', '/big.html']) {
        const whole = await fetchRaw(`${relay.url}${path}`);
        const ranged = await fetchRaw(`${relay.url}${path}`, { headers: { range: 'bytes=0-99' } });
        const head = await fetchRaw(`${relay.url}${path}`, { method: 'HEAD' });
        // Either ranges work (206), or the relay does not say they do (RFC 9110 §14.3).
        const consistent = ranged.status === 206 || (whole.headers['accept-ranges'] === undefined && head.headers['accept-ranges'] === undefined);
        if (!consistent) wrong.push(`${stage.name} ${path}: Accept-Ranges: ${whole.headers['accept-ranges']}, but Range: bytes=0-99 got ${ranged.status}`);
        assert.ok(whole.body.equals(ranged.body), `${stage.name} ${path}: the Range request gets the whole body`);
      }
    } finally {
      await relay.close();
    }
  }
  await upstream.close();
  assert.equal(wrong, []);
});

test('a 206 to a request whose Range the stage dropped gives 502, never a piece the client takes for its range', async () => {
  for (const stage of [transformResponse((text: string) => text), transformResponseStream(() => null)]) {
    await withRelay([stage], async (url, logger) => {
      const ranged = await fetchRaw(`${url}/partial`, { headers: { range: 'bytes=0-9', 'if-range': '"v1"' } });
      assert.is(ranged.status, 502, stage.name);
      assert.ok(logger.lines.some((line) => line.level === 'error' && line.fields.status === 206), stage.name);
      // Without a Range there is nothing it could be mistaken for: it passes as before, untouched.
      const unasked = await fetchRaw(`${url}/partial`);
      assert.is(unasked.status, 206, stage.name);
      assert.is(unasked.body.toString(), html.slice(0, 10));
    });
  }
});

test('a transform that throws gives 502 and an error log line; a body that is not what it says gives 502 too', async () => {
  const stage = transformResponse(() => {
    throw new Error('boom at 10.0.0.7');
  });
  await withRelay([stage], async (url, logger) => {
    const response = await fetchRaw(`${url}/plain`);
    assert.is(response.status, 502);
    assert.match(response.text, /^502 Bad Gateway: .*\(ERR_UPSTREAM_PROTOCOL\)\n$/);
    assert.not.match(response.text, /10\.0\.0\.7|boom/);
    assert.ok(logger.lines.some((line) => line.level === 'error' && String(line.fields.error).includes('boom')));
  });
  await withRelay([transformResponse((body) => body, { as: 'json' })], async (url, logger) => {
    assert.is((await fetchRaw(`${url}/corrupt`)).status, 502);
    assert.ok(logger.lines.some((line) => line.level === 'warn' && String(line.fields.error).includes('cannot be decoded')));
  });
});

test('a client that goes away while the body is read closes the upstream response; nothing stays in flight', async () => {
  let upstreamClosed = false;
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
    res.write('half of it');
    res.on('close', () => (upstreamClosed = true));
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse((text) => text)] }));
  try {
    const req = request(`${relay.url}/slow`, { agent: false });
    req.on('error', () => {});
    req.end();
    assert.ok(await waitFor(() => upstream.requests.length === 1));
    await delay(50);
    req.destroy();
    assert.ok(await waitFor(() => upstreamClosed, 5_000), 'the upstream response was closed');
    assert.ok(await waitFor(() => relay.relay.inFlight === 0, 5_000));
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('bad options throw when the stage is built', () => {
  assert.throws(() => transformResponse('x' as never), /transformResponse: the transform must be a function/);
  assert.throws(() => transformResponse((b) => b, { as: 'xml' as never }), /as must be one of "text", "json", "bytes"/);
  assert.throws(() => transformResponse((b) => b, { type: ['text/html'] } as never), /unknown option "type" \(did you mean "types"\?/);
  assert.throws(() => transformResponse((b) => b, { maxBytes: -2 }), /maxBytes/);
});

test.run();
