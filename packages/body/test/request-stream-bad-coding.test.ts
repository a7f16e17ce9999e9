// transformRequestStream and a client upload labelled `Content-Encoding: gzip` that is not gzip, or is cut short: the
// client's error, answered 400 as transformRequest answers it, never a 500 relay failure, and never a body the
// upstream could take for complete. Black-box: real upstreams on 127.0.0.1, a real node:http client.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { transformRequest, transformRequestStream } from '../src/index.js';

/** A Transform that passes every byte on. */
function passOn(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, chunk);
    },
  });
}

const gzipJson = { 'content-type': 'application/json', 'content-encoding': 'gzip' };

/** What the upstream made of one request body: the bytes it got, and whether the body ended (complete) or broke off. */
interface UploadSeen {
  bytes: number;
  ended: boolean;
  closed: boolean;
}

/** An upstream that reads each body as it comes and records how it finished; it answers 200 once a body ends. */
async function uploadUpstream(uploads: UploadSeen[], answerAtOnce = false) {
  return startUpstream(
    (req: IncomingMessage, res: ServerResponse) => {
      const seen: UploadSeen = { bytes: 0, ended: false, closed: false };
      uploads.push(seen);
      if (answerAtOnce) res.writeHead(200, { 'content-type': 'text/plain' }).write('started\n');
      req.on('data', (chunk: Buffer) => (seen.bytes += chunk.length));
      req.on('end', () => {
        seen.ended = true;
        res.end('ok\n');
      });
      req.on('error', () => {});
      req.on('close', () => (seen.closed = true));
    },
    { streaming: true },
  );
}

test('transformRequestStream: an upload labelled gzip that is not gzip is the client\'s error (400, as transformRequest answers), not a 500 relay failure', async () => {
  // README errors table: 400 when "the request body does not decode ... as its headers say"; 500 ERR_INTERNAL is for
  // "a request transform's fn or Transform failed". A corrupt client upload is neither the relay's fault nor the
  // upstream's: answered 500 it counts as a server error (alerts, SLOs, client retries of a request that can never
  // succeed) and is logged at error as "relay pipeline failed" with a warn "upstream request failed".
  const upstream = await startUpstream();
  const buffered = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformRequest((data: any) => ({ ...data, via: 'gw' }), { as: 'json' })] }));
  const streamed = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [transformRequestStream(() => passOn(), { types: ['application/json'] })] }),
  );
  const good = zlib.gzipSync(JSON.stringify({ order: 1, note: 'x'.repeat(200) }));
  const bodies: Array<[string, Buffer]> = [
    ['not gzip at all', Buffer.from('{"order":1} sent plain under a gzip label')],
    ['a gzip body cut short', good.subarray(0, good.length - 10)],
  ];
  try {
    for (const [name, body] of bodies) {
      const viaBuffered = await fetchRaw(`${buffered.url}/orders`, { method: 'POST', headers: gzipJson, body });
      assert.is(viaBuffered.status, 400, `transformRequest, ${name}`);
      const viaStream = await fetchRaw(`${streamed.url}/orders`, { method: 'POST', headers: gzipJson, body });
      assert.is(viaStream.status, 400, `transformRequestStream, ${name}: ${viaStream.status} ${viaStream.text.trim()}`);
    }
  } finally {
    await streamed.close();
    await buffered.close();
    await upstream.close();
  }
});

test('the 400 closes the HTTP/1.1 connection, is logged at warn as the client\'s, and the upstream attempt that had the first bytes is aborted, not completed', async () => {
  const uploads: UploadSeen[] = [];
  const upstream = await uploadUpstream(uploads);
  const logger = memoryLogger();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [transformRequestStream(() => passOn(), { types: ['application/json'] })] }));
  // Incompressible enough that the encoder sends most of it upstream before the cut end is reached (decoded < 1 MiB).
  const whole = zlib.gzipSync(JSON.stringify({ blob: randomBytes(300 * 1024).toString('base64') }));
  try {
    const cut = await fetchRaw(`${relay.url}/orders`, { method: 'POST', headers: gzipJson, body: whole.subarray(0, whole.length - 10) });
    assert.is(cut.status, 400);
    assert.is(cut.headers.connection, 'close');
    assert.match(cut.text, /request body does not match its Content-Type or Content-Encoding/);
    assert.ok(await waitFor(() => uploads.length === 1 && uploads[0]!.closed), 'the upstream request is over');
    assert.ok(uploads[0]!.bytes > 0, 'the upstream had been sent the first bytes');
    assert.not.ok(uploads[0]!.ended, `the upstream never sees the cut body end (got ${uploads[0]!.bytes} bytes)`);

    const levels = logger.lines.map((line) => `${line.level}: ${line.message}`);
    assert.ok(
      logger.lines.some((line) => line.level === 'warn' && /400 sent/.test(line.message) && /gzip body does not decode/.test(String(line.fields.error))),
      levels.join('\n'),
    );
    assert.not.ok(logger.lines.some((line) => line.level === 'error'), `no error line: ${levels.join('; ')}`);
    assert.not.ok(logger.lines.some((line) => /upstream request failed/.test(line.message)), `the upstream is not blamed: ${levels.join('; ')}`);

    const fine = await fetchRaw(`${relay.url}/orders`, { method: 'POST', headers: gzipJson, body: zlib.gzipSync('{"order":2}') });
    assert.is(fine.status, 200, 'a good upload still goes through');
    assert.is(uploads.at(-1)!.ended, true);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('once the upstream has answered, an upload that then breaks off cut short cuts the client\'s response: never one that looks complete', async () => {
  const uploads: UploadSeen[] = [];
  const upstream = await uploadUpstream(uploads, true);
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformRequestStream(() => passOn(), { types: ['application/json'] })] }));
  const whole = zlib.gzipSync(JSON.stringify({ blob: randomBytes(300 * 1024).toString('base64') }));
  try {
    const answer = await new Promise<{ status: number; complete: boolean }>((resolve, reject) => {
      const req = httpRequest(`${relay.url}/orders`, { method: 'POST', agent: false, headers: gzipJson });
      req.on('error', () => {});
      req.on('response', (res) => {
        // The head came while the upload goes on: now the rest, cut short.
        req.end(whole.subarray(whole.length / 2, whole.length - 10));
        res.resume();
        res.on('error', () => {});
        res.on('close', () => resolve({ status: res.statusCode ?? 0, complete: res.complete }));
      });
      req.write(whole.subarray(0, whole.length / 2));
      setTimeout(() => reject(new Error('no response head within 5 s')), 5000).unref();
    });
    assert.is(answer.status, 200);
    assert.not.ok(answer.complete, 'the response is cut off');
    assert.ok(await waitFor(() => uploads.length === 1 && uploads[0]!.closed), 'the upstream request is over');
    assert.not.ok(uploads[0]!.ended, 'the upstream never sees the cut body end');
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
