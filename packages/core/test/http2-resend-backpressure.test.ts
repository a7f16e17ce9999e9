// The resend of a refused HTTP/2 stream with a started body (http2-attempt.ts, http2-sent-body.ts) while
// the body is held by upstream flow control: unpiping it from the refused stream resumed it, and with no
// stream attached its chunks flowed into nothing while the resend waited for a new session. The upstream
// then got a body with a hole (a 200 for a corrupt upload, or a 502).
import crypto from 'node:crypto';
import http from 'node:http';
import http2, { constants, type ServerHttp2Stream } from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bytePattern, listenHttp2 } from '@relay/testkit';
import { createRelay, http2Transport } from '../src/index.js';
import { h2FrontSession, relayOverHttp2, type Closers } from './http2-helpers.js';

const test = suite('http2Transport: resend of a refused stream whose body is held by flow control');
const closers: Closers = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

function post(url: string, body: Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/submit`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * An h2 upstream with a small stream window (the relay's writes back up, so the client's body is
 * paused by backpressure) whose first session never reads a POST: it rotates (GOAWAY below the
 * POST, then close) 100 ms in. Every body it answered is kept.
 */
async function rotatingSlowUpstream(): Promise<{ url: string; received: Buffer[] }> {
  const received: Buffer[] = [];
  let sessions = 0;
  const server = http2.createServer({ settings: { initialWindowSize: 4096 } });
  server.on('session', () => sessions++);
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => {});
    const session = stream.session!;
    if (headers[':method'] === 'POST' && sessions === 1) {
      stream.pause();
      setTimeout(() => {
        session.goaway(constants.NGHTTP2_NO_ERROR, stream.id! - 2);
        setTimeout(() => session.destroy(), 20);
      }, 100);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      if (headers[':method'] === 'POST') received.push(body);
      stream.respond({ ':status': 200 });
      stream.end(`got ${body.length} ${sha(body)}`);
    });
  });
  const listening = await listenHttp2(server);
  closers.push(() => listening.close());
  return { url: listening.url, received };
}

async function warm(url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => http.get(`${url}/warm`, (res) => res.resume().on('end', resolve)).on('error', reject));
}

test('chunked 256 KiB upload held by upstream flow control, GOAWAY below it: the upstream never gets a truncated body answered 200 (whole body on the resent stream, or a failure)', async () => {
  const up = await rotatingSlowUpstream();
  const relay = await relayOverHttp2(closers, up.url);
  await warm(relay.url);
  const body = bytePattern(256 * 1024);
  const answer = await post(relay.url, body, { 'transfer-encoding': 'chunked' });
  for (const got of up.received) assert.is(sha(got), sha(body), `upstream received ${got.length} of ${body.length} bytes on the resent stream`);
  assert.is(answer.status, 200, answer.body);
  assert.is(answer.body, `got ${body.length} ${sha(body)}`);
});

test('content-length 256 KiB upload held by upstream flow control, GOAWAY below it: the POST is not answered 502 ERR_UPSTREAM_PROTOCOL (the resend must not send a body shorter than its content-length)', async () => {
  const up = await rotatingSlowUpstream();
  const relay = await relayOverHttp2(closers, up.url);
  await warm(relay.url);
  const body = bytePattern(256 * 1024);
  const answer = await post(relay.url, body, { 'content-length': String(body.length) });
  assert.not.match(answer.body, /ERR_UPSTREAM_PROTOCOL/);
  assert.is(answer.status, 200, answer.body);
  assert.is(answer.body, `got ${body.length} ${sha(body)}`);
});

test('h2 client (gRPC-like) 256 KiB upload held by upstream flow control, GOAWAY below it: the upstream never gets a truncated body answered 200', async () => {
  const up = await rotatingSlowUpstream();
  const session = await h2FrontSession(closers, createRelay({ targetBaseUrl: up.url, transport: http2Transport() }));
  await new Promise<void>((resolve, reject) => {
    const warmStream = session.request({ ':path': '/warm' });
    warmStream.on('error', reject);
    warmStream.resume().on('end', resolve);
  });
  const body = bytePattern(256 * 1024);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/submit' });
    let status = 0;
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ status, body: text }));
    stream.on('error', reject);
    stream.end(body);
  });
  for (const got of up.received) assert.is(sha(got), sha(body), `upstream received ${got.length} of ${body.length} bytes on the resent stream`);
  assert.is(answer.status, 200, answer.body);
  assert.is(answer.body, `got ${body.length} ${sha(body)}`);
});

test.run();
