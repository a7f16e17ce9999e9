// Found by review s39 (issue 18): the Combined Log Format line read as Apache defines it
// (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`) and as docs/observability.md promises it
// ("every byte below 32 or above 126 of a quoted field are written \xHH … the line stays ASCII").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { sendRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { accessLog } from '../src/index.js';

/** Apache's combined format, one capture per field. */
const combined = /^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

test('a path longer than the log cut (2048): the Combined line stays ASCII, the cut mark escaped or ASCII like every other byte', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  });
  const lines: string[] = [];
  const log = accessLog({ stream: { write: (line: string) => lines.push(line) }, format: 'combined' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  try {
    const raw = await sendRaw(served.port, `GET /${'y'.repeat(3000)} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.ok(await waitFor(() => lines.length === 1));
    const line = lines[0]!.replace(/\n$/, '');
    assert.match(line, combined, 'parses as a Combined line');
    const bad = [...line].filter((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) > 0x7e);
    assert.equal(bad.map((char) => `U+${char.charCodeAt(0).toString(16).toUpperCase()}`), [], 'docs: "the line stays ASCII"');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a request the relay refuses (outside the mount path) from an HTTP/1.0 client: "%r" names HTTP/1.0, as the relayed line does, not HTTP/1.1', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  });
  const lines: string[] = [];
  const log = accessLog({ stream: { write: (line: string) => lines.push(line) }, format: 'combined' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', stages: [log.request, log.attempt] }));
  try {
    // Relayed: the request line names the client's version.
    assert.match(await sendRaw(served.port, 'GET /api/a HTTP/1.0\r\nHost: a\r\n\r\n'), /^HTTP\/1\.1 200 /);
    // Refused before any stage (404 outside /api).
    assert.match(await sendRaw(served.port, 'GET /elsewhere HTTP/1.0\r\nHost: a\r\n\r\n'), /^HTTP\/1\.1 404 /);
    assert.ok(await waitFor(() => lines.length === 2));
    const relayed = combined.exec(lines[0]!.replace(/\n$/, ''));
    const refused = combined.exec(lines[1]!.replace(/\n$/, ''));
    assert.ok(relayed && refused, `both parse: ${JSON.stringify(lines)}`);
    assert.is(relayed![5], 'GET /api/a HTTP/1.0');
    assert.is(refused![6], '404');
    assert.is(refused![5], 'GET /elsewhere HTTP/1.0', 'Apache %r: the first line of the request as the client sent it');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
