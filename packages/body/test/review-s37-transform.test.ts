// Review s37 (issue 20, bodies: transformResponse/transformRequest): text in charsets other than UTF-8 (what the
// client decodes, bytes the transform did not touch), JSON with a byte order mark or no content, what the rebuilt
// response keeps for the stages outside it (ProxyResponse.target), streaming when no transform applies, and a
// gzip upload that decodes past maxBytes. Black-box: real upstreams on 127.0.0.1, real clients.
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, parseTarget, type Stage, type Target } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { transformRequest, transformResponse } from '../src/index.js';

/** An upstream answering every request with `body` and `headers`. */
function fixed(body: Buffer | string, headers: Record<string, string>) {
  return startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  });
}

test('transformResponse: text returned for an ISO-8859-1 body reaches the client as fn wrote it, decoded by its Content-Type', async () => {
  // README: "Text is decoded by the charset (... ISO-8859-1)". A client decodes `charset=iso-8859-1` as the WHATWG
  // Encoding Standard says (windows-1252, as every browser and TextDecoder do). fn returned "5 €"; the client must
  // read "5 €", not "5 ¬" (Buffer latin1 keeps the low byte of U+20AC, 0xAC). Either the euro goes as 0x80 or the
  // body is re-labelled UTF-8; silently writing another character is neither.
  const upstream = await fixed(Buffer.from('caf\xe9: price', 'latin1'), { 'content-type': 'text/plain; charset=iso-8859-1' });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse((text: string) => text.replace('price', '5 €'))] }));
  try {
    const answer = await fetchRaw(`${relay.url}/menu`);
    assert.is(answer.status, 200);
    const label = /charset=([^;]+)/i.exec(String(answer.headers['content-type']))?.[1] ?? 'utf-8';
    // Node 20.18.3 and later decode windows-1252 as Latin-1 (nodejs/node#60888: € read as U+0080, unlike every
    // browser), so this client reads the label by the WHATWG table itself: € is 0x80 there, other bytes are Latin-1.
    const read = (bytes: Buffer) => (/^utf-?8$/i.test(label) ? bytes.toString('utf8') : bytes.toString('latin1').replaceAll('\x80', '€'));
    assert.is(read(answer.body), 'café: 5 €', `bytes ${answer.body.toString('hex')} as ${label}`);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('transformResponse: an HTML body without a charset parameter keeps the bytes fn did not change (a windows-1252 page)', async () => {
  // Pages often name their charset only in <meta charset> (HTML's own rule). nginx's sub_filter replaces bytes and
  // leaves the rest of the page alone; decoding a non-UTF-8 body as UTF-8 turns every é and “ into U+FFFD, and fn
  // returning the text writes EF BF BD over them: the page is corrupted outside the link that was rewritten.
  const page = Buffer.concat([
    Buffer.from('<html><head><meta charset="windows-1252"></head><body>caf'),
    Buffer.from([0xe9, 0x20, 0x93]),
    Buffer.from('quoted'),
    Buffer.from([0x94]),
    Buffer.from(' <a href="http://api:8000/x">x</a></body></html>'),
  ]);
  const upstream = await fixed(page, { 'content-type': 'text/html' });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse((html: string) => html.replaceAll('http://api:8000', '/api'))] }));
  try {
    const answer = await fetchRaw(`${relay.url}/`);
    assert.is(answer.status, 200);
    const expected = Buffer.from(page.toString('latin1').replace('http://api:8000', '/api'), 'latin1');
    assert.is(answer.body.toString('hex'), expected.toString('hex'), `the page as sent: ${answer.body.toString('latin1')}`);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('transformResponse as json: a UTF-8 body with a byte order mark is transformed, not a 502', async () => {
  // RFC 8259 §8.1: parsers "MAY ignore the presence of a byte order mark rather than treating it as an error";
  // fetch's Response.json() (UTF-8 decode) strips it, so browsers read this API fine without the relay. Some
  // servers (.NET, PowerShell) send it. A gateway that turns a body every client parses into 502 breaks the API.
  const upstream = await fixed('\uFEFF{"id":7,"secret":"x"}', { 'content-type': 'application/json; charset=utf-8' });
  const plain = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse((data: any) => ({ ...data, secret: undefined }), { as: 'json' })] }));
  try {
    assert.equal(await (await fetch(`${plain.url}/user`)).json(), { id: 7, secret: 'x' }, 'fetch reads the body without the relay');
    const answer = await fetchRaw(`${relay.url}/user`);
    assert.is(answer.status, 200, answer.text);
    assert.equal(JSON.parse(answer.text), { id: 7 });
  } finally {
    await relay.close();
    await plain.close();
    await upstream.close();
  }
});

test('transformResponse as json: a 200 with no content (Content-Length: 0) passes untouched, not a 502', async () => {
  // RFC 9110 §6.4.1: content may be empty; an empty body is not a malformed JSON document but no document at all
  // (Spring's ResponseEntity.ok().contentType(JSON).build(), a DELETE answered 200). Issue 20: 204 and 304 (no
  // content) are "never transformed"; the same absence of content with a 200 must not become a Bad Gateway.
  for (const framing of ['content-length', 'chunked'] as const) {
    let called = false;
    const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, framing === 'content-length' ? { 'content-type': 'application/json', 'content-length': '0' } : { 'content-type': 'application/json' });
      res.end();
    });
    const relay = await serveRelay(
      createRelay({
        targetBaseUrl: upstream.url,
        stages: [
          transformResponse(
            (data: any) => {
              called = true;
              return data;
            },
            { as: 'json' },
          ),
        ],
      }),
    );
    try {
      const answer = await fetchRaw(`${relay.url}/items/3`, { method: 'DELETE' });
      assert.is(answer.status, 200, `${framing}: ${answer.text}`);
      assert.is(answer.text, '', framing);
      assert.not.ok(called, `${framing}: fn was called on no content`);
    } finally {
      await relay.close();
      await upstream.close();
    }
  }
});

/** A stage that chooses the upstream and says so on the answer, as router() and balance() do (ProxyResponse.target). */
function choose(url: string): Stage {
  const target = parseTarget(url);
  return {
    name: 'choose',
    wrap: (next) =>
      async function chooseStage(request) {
        const response = await next({ ...request, target });
        response.target = target;
        return response;
      },
  };
}

test('transformResponse: the stages outside still see which upstream answered (ProxyResponse.target), transformed or not', async () => {
  // core types.ts ProxyResponse.target: "For stages outside retry() ... that rewrite what names the upstream
  // (rewriteLocation())". An Express redirect (302, text/plain "Found. Redirecting to http://10.0.0.7:8000/x")
  // is a matching type; transformResponse rebuilds the response object and the target is lost, so rewriteLocation()
  // outside judges the Location by the relay's default upstream and leaves the internal address in it.
  const chosen = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    const body = 'Found. Redirecting to /login';
    res.writeHead(302, { location: '/login', 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length) });
    res.end(body);
  });
  const seen: Array<Target | undefined> = [];
  const observer: Stage = {
    name: 'observer',
    wrap: (next) =>
      async function observerStage(request) {
        const response = await next(request);
        seen.push(response.target);
        return response;
      },
  };
  const plain = await serveRelay(createRelay({ targetBaseUrl: 'http://127.0.0.1:9', stages: [observer, choose(chosen.url)] }));
  const transformed = await serveRelay(
    createRelay({ targetBaseUrl: 'http://127.0.0.1:9', stages: [observer, transformResponse((text: string) => text.replace('Found', 'Moved')), choose(chosen.url)] }),
  );
  try {
    assert.is((await fetchRaw(`${plain.url}/account`)).status, 302);
    assert.is(seen[0]?.origin, new URL(chosen.url).origin, 'without a transform the observer sees the chosen upstream');
    const answer = await fetchRaw(`${transformed.url}/account`);
    assert.is(answer.status, 302);
    assert.is(answer.text, 'Moved. Redirecting to /login');
    assert.is(seen[1]?.origin, new URL(chosen.url).origin, 'transformResponse dropped response.target');
  } finally {
    await transformed.close();
    await plain.close();
    await chosen.close();
  }
});

test('transformResponse (regression): a body of a type it does not transform streams through, not held until the end', async () => {
  // Issue 20: "leaves non-matching types ... streaming untouched".
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write('first ');
    const timer = setTimeout(release, 4000);
    void released.then(() => {
      clearTimeout(timer);
      res.end('second');
    });
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse((text: string) => text.toUpperCase())] }));
  try {
    const { firstAlone, text } = await new Promise<{ firstAlone: boolean; text: string }>((resolve, reject) => {
      const req = request(`${relay.url}/download`, { agent: false }, (res) => {
        let text = '';
        let firstAlone = false;
        res.on('data', (part: Buffer) => {
          if (text === '' && part.toString() === 'first ') firstAlone = true;
          text += part.toString();
          release();
        });
        res.on('end', () => resolve({ firstAlone, text }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.is(text, 'first second');
    assert.ok(firstAlone, 'the first chunk waited for the end of the body');
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('transformRequest (regression): a gzip upload that decodes past maxBytes goes upstream as the client sent it; fn never sees it', async () => {
  // README: "Bodies larger than this (declared, as read, or once decoded) pass untouched". A 5 KiB gzip that inflates
  // to 5 MiB (a small compression bomb) must not be inflated whole in the relay (zlib maxOutputLength).
  const bomb = zlib.gzipSync(Buffer.from(JSON.stringify({ pad: 'a'.repeat(5 * 1024 * 1024) })));
  let called = false;
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse, seen) => {
    const body = JSON.stringify({ bytes: seen.body.length, same: seen.body.equals(bomb), coding: req.headers['content-encoding'], length: req.headers['content-length'] });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
  });
  const relay = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        transformRequest(
          (data: any) => {
            called = true;
            return data;
          },
          { as: 'json', maxBytes: 64 * 1024 },
        ),
      ],
    }),
  );
  try {
    const answer = await fetchRaw(`${relay.url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(bomb.length) },
      body: bomb,
    });
    assert.is(answer.status, 200);
    assert.equal(JSON.parse(answer.text), { bytes: bomb.length, same: true, coding: 'gzip', length: String(bomb.length) });
    assert.not.ok(called);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
