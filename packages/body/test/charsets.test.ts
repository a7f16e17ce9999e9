// Text in the charsets the buffered transforms rewrite: windows-1252 by the WHATWG table (what the
// iso-8859-1 label means to browsers), relabelled UTF-8 when fn writes what it cannot hold, and bodies
// that name no charset and are not UTF-8.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { charsetOfLabel, decodeWindows1252, encodeWindows1252, withCharset } from '../src/charsets.js';
import { rewriteBody, transformResponse } from '../src/index.js';

test('windows-1252: every byte decodes to one character and encodes back to itself; the 0x80–0x9F block is the WHATWG one', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
  const text = decodeWindows1252(all);
  assert.is(text.length, 256);
  assert.is(encodeWindows1252(text)!.toString('hex'), all.toString('hex'));
  assert.is(decodeWindows1252(Buffer.from([0x80, 0x93, 0x94, 0x9f, 0x81, 0xe9])), '€“”Ÿ\u0081é');
  assert.is(encodeWindows1252('5 € – ™')!.toString('hex'), '352080209620' + '99');
  assert.is(encodeWindows1252('\u0080'), null, 'U+0080 is not in windows-1252: 0x80 is €');
  assert.is(encodeWindows1252('✓'), null);
});

test('charset labels: the WHATWG names of UTF-8 and windows-1252; others are not rewritten', () => {
  for (const label of ['', 'utf-8', 'utf8', 'unicode-1-1-utf-8']) assert.is(charsetOfLabel(label), 'utf-8', label);
  for (const label of ['iso-8859-1', 'latin1', 'us-ascii', 'ascii', 'windows-1252', 'cp1252', 'l1']) assert.is(charsetOfLabel(label), 'windows-1252', label);
  for (const label of ['shift_jis', 'utf-16le', 'iso-8859-2']) assert.is(charsetOfLabel(label), null, label);
  assert.is(withCharset('text/html; charset="ISO-8859-1"; q=1', 'utf-8'), 'text/html; charset=utf-8; q=1');
  assert.is(withCharset('text/plain', 'utf-8'), 'text/plain; charset=utf-8');
});

test('rewriteBody: text that fits the body\'s charset stays in it; text that does not goes as UTF-8 and says so', async () => {
  const latin = Buffer.from('caf\xe9 \x93x\x94', 'latin1');
  const kept = { 'content-type': 'text/plain; charset=ISO-8859-1' };
  const same = await rewriteBody(latin, kept, (text: string) => text.replace('x', '€'), { as: 'text' });
  assert.is(same!.toString('hex'), Buffer.from('caf\xe9 \x93\x80\x94', 'latin1').toString('hex'));
  assert.is(kept['content-type'], 'text/plain; charset=ISO-8859-1');
  const relabelled = { 'content-type': 'text/plain; charset=ISO-8859-1' };
  const utf8 = await rewriteBody(latin, relabelled, (text: string) => text.replace('x', '✓'), { as: 'text' });
  assert.is(utf8!.toString('utf8'), 'café “✓”');
  assert.is(relabelled['content-type'], 'text/plain; charset=utf-8');
  // US-ASCII is windows-1252 to a browser: an é fn adds is one byte it reads as é, not two it reads as Ã©.
  const ascii = { 'content-type': 'text/plain; charset=us-ascii' };
  assert.is((await rewriteBody(Buffer.from('cafe'), ascii, () => 'café', { as: 'text' }))!.toString('hex'), '636166e9');
});

test('rewriteBody: a body naming no charset is read as UTF-8 when it is, else byte for byte as windows-1252', async () => {
  const utf8 = { 'content-type': 'text/html' };
  assert.is((await rewriteBody(Buffer.from('café x'), utf8, (text: string) => text.replace('x', '€'), { as: 'text' }))!.toString('utf8'), 'café €');
  const legacy = { 'content-type': 'text/html' };
  let seen = '';
  const bytes = await rewriteBody(Buffer.from('caf\xe9 \x93x\x94', 'latin1'), legacy, (text: string) => ((seen = text), text.replace('x', 'y')), { as: 'text' });
  assert.is(seen, 'café “x”');
  assert.is(bytes!.toString('hex'), Buffer.from('caf\xe9 \x93y\x94', 'latin1').toString('hex'));
  assert.is(legacy['content-type'], 'text/html');
});

test('rewriteBody as json: a byte order mark is ignored; an empty body is left alone and fn is not called', async () => {
  const headers = { 'content-type': 'application/json' };
  assert.is((await rewriteBody(Buffer.from('\uFEFF{"a":1}'), headers, (data: any) => ({ ...data, b: 2 }), { as: 'json' }))!.toString(), '{"a":1,"b":2}');
  let called = false;
  assert.is(await rewriteBody(Buffer.alloc(0), { 'content-type': 'application/json' }, () => ((called = true), {}), { as: 'json' }), null);
  assert.not.ok(called);
  // Only JSON: an empty text body is still text fn may fill.
  assert.is((await rewriteBody(Buffer.alloc(0), { 'content-type': 'text/plain' }, () => 'filled', { as: 'text' }))!.toString(), 'filled');
});

test('transformResponse: a 205 is never given content, and fn is not called for it', async () => {
  let called = false;
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(205, { 'content-type': 'text/plain' });
    res.end();
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse(() => ((called = true), 'content'))] }));
  try {
    const answer = await fetchRaw(`${relay.url}/form`);
    assert.is(answer.status, 205);
    assert.is(answer.text, '');
    assert.not.ok(called);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
