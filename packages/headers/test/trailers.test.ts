// The drop and allow lists apply to trailer fields too. Trailers are relayed both ways (docs/headers.md "Trailers"), so
// without it a name the user dropped or did not allow would still cross the relay after the body; and a client's
// request trailer must never pre-seed a header extraRequest sets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { sendRaw, serveRelay, startUpstream, trailerEchoHandler, trailerEchoOf } from '@relay/testkit';
import { headers } from '../src/index.js';

test('dropResponse and allowResponse also keep the dropped or unlisted names out of the response trailers', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-debug-info, x-internal-host' });
    res.write('hello');
    res.addTrailers({ 'x-debug-info': 'stack at db.internal:5432', 'x-internal-host': '10.0.0.7' });
    res.end();
  });
  const dropping = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ dropResponse: ['x-debug-info'] })] }));
  const allowing = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ allowResponse: ['content-type'] })] }));
  try {
    const request = 'GET / HTTP/1.1\r\nHost: gw.example\r\nTE: trailers\r\nConnection: close\r\n\r\n';
    const dropped = await sendRaw(dropping.port, request);
    assert.ok(dropped.startsWith('HTTP/1.1 200'), dropped);
    assert.ok(dropped.includes('hello'), dropped);
    assert.not.match(dropped.toLowerCase(), 'x-debug-info: ', 'a dropped response header came back as a trailer');
    const allowed = await sendRaw(allowing.port, request);
    assert.ok(allowed.startsWith('HTTP/1.1 200'), allowed);
    assert.not.match(allowed.toLowerCase(), 'x-internal-host: ', 'an unlisted response field reached the client as a trailer');
    assert.not.match(allowed.toLowerCase(), 'x-debug-info: ', 'an unlisted response field reached the client as a trailer');
  } finally {
    await dropping.close();
    await allowing.close();
    await upstream.close();
  }
});

test('dropRequest and allowRequest also keep the dropped or unlisted names out of the request trailers', async () => {
  const upstream = await startUpstream(trailerEchoHandler);
  const dropping = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ dropRequest: ['x-internal-token'] })] }));
  const allowing = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ allowRequest: ['content-type'] })] }));
  try {
    const request =
      'POST /upload HTTP/1.1\r\nHost: gw.example\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: x-internal-token, x-unlisted\r\nConnection: close\r\n\r\n' +
      '5\r\nhello\r\n0\r\nX-Internal-Token: forged\r\nX-Unlisted: 1\r\n\r\n';
    const dropped = await sendRaw(dropping.port, request);
    assert.ok(dropped.startsWith('HTTP/1.1 200'), dropped);
    const seenByDropping = trailerEchoOf(dropped);
    assert.is(seenByDropping.body, 'hello');
    assert.is(seenByDropping.trailers['x-internal-token'], undefined, 'a dropped request header reached the upstream as a trailer');
    const allowed = await sendRaw(allowing.port, request);
    assert.ok(allowed.startsWith('HTTP/1.1 200'), allowed);
    const seenByAllowing = trailerEchoOf(allowed);
    assert.is(seenByAllowing.body, 'hello');
    assert.equal(seenByAllowing.trailers, {}, 'unlisted request fields reached the upstream as trailers');
  } finally {
    await dropping.close();
    await allowing.close();
    await upstream.close();
  }
});

test('a listed trailer still passes; a request trailer named like an extraRequest header is dropped', async () => {
  const upstream = await startUpstream((req, res, seen) => {
    if (req.method === 'POST') {
      trailerEchoHandler(req, res, seen);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, x-debug-info' });
    res.write('hello');
    res.addTrailers({ 'x-checksum': 'abc', 'x-debug-info': 'db.internal' });
    res.end();
  });
  const stages = [headers({ allowRequest: ['x-checksum', 'x-internal-token'], extraRequest: { 'x-internal-token': 'real' }, allowResponse: ['x-checksum'] })];
  const gw = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
  try {
    const upload =
      'POST /upload HTTP/1.1\r\nHost: gw.example\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum, x-internal-token\r\nConnection: close\r\n\r\n' +
      '5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Internal-Token: forged\r\n\r\n';
    const sent = await sendRaw(gw.port, upload);
    assert.ok(sent.startsWith('HTTP/1.1 200'), sent);
    assert.equal(trailerEchoOf(sent).trailers, { 'x-checksum': 'abc' }, 'the listed trailer passes, the forged token does not');
    const received = await sendRaw(gw.port, 'GET / HTTP/1.1\r\nHost: gw.example\r\nTE: trailers\r\nConnection: close\r\n\r\n');
    assert.ok(received.startsWith('HTTP/1.1 200'), received);
    assert.match(received.toLowerCase(), 'x-checksum: abc', 'a listed response trailer reaches the client');
    assert.not.match(received.toLowerCase(), 'x-debug-info: ');
  } finally {
    await gw.close();
    await upstream.close();
  }
});

test('a response trailer named like an extraResponse header is dropped: the client reads the stage\'s value only', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-frame-options, x-checksum' });
    res.write('hello');
    res.addTrailers({ 'x-frame-options': 'ALLOWALL', 'x-checksum': 'abc' });
    res.end();
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ extraResponse: { 'x-frame-options': 'DENY' } })] }));
  try {
    const raw = (await sendRaw(served.port, 'GET / HTTP/1.1\r\nHost: gw.example\r\nTE: trailers\r\nConnection: close\r\n\r\n')).toLowerCase();
    assert.ok(raw.startsWith('http/1.1 200'), raw);
    assert.ok(raw.includes('x-frame-options: deny'), raw);
    assert.not.match(raw, 'x-frame-options: allowall', 'the upstream\'s trailer of an extraResponse name reached the client');
    assert.ok(raw.includes('x-checksum: abc'), 'another trailer still passes');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
