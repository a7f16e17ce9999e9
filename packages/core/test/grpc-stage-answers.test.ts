// A stage's own error answer (a ProxyResponse with `errorCode`: rateLimit's 429, bodyLimit's 413) to a
// gRPC call over HTTP/2 is sent trailers-only, as the relay's own errors are; everything else is untouched.
import http2 from 'node:http2';
import { PassThrough, Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, listenHttp2, serveRelay, waitFor } from '@relay/testkit';
import { createRelay, textResponse, type ProxyResponse, type Relay, type Stage } from '../src/index.js';

const test = suite('gRPC: stage answers');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

const limitedBody = Buffer.from('429 Too Many Requests: slow down, ü (ERR_RATE_LIMITED)\n');

/** A stage that answers every call itself with what `answer` makes: it never reaches the (closed) upstream. */
function answering(answer: () => ProxyResponse): Stage {
  return { name: 'answering', wrap: () => async function answeringStage() { return answer(); } };
}

const rateLimited = (): ProxyResponse => ({
  ...textResponse(429, limitedBody, { 'retry-after': '7', 'ratelimit-remaining': '0' }),
  errorCode: 'ERR_RATE_LIMITED',
});

async function relayWith(answer: () => ProxyResponse): Promise<Relay> {
  return createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}`, stages: [answering(answer)] });
}

/** An h2c front for `relay` and a client session on it. */
async function h2Front(relay: Relay): Promise<http2.ClientHttp2Session> {
  const listening = await listenHttp2(http2.createServer(relay.handle));
  const session = http2.connect(listening.url);
  closers.push(async () => {
    session.destroy();
    await listening.close();
    await relay.shutdown({ timeout: 500 });
  });
  return session;
}

interface Answer {
  headers: http2.IncomingHttpHeaders;
  endedWithHeaders: boolean;
  dataFrames: number;
  body: string;
}

/** One call with an empty message; rejects when no end came within 5 s (an answer that never ends). */
function call(session: http2.ClientHttp2Session, contentType: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/relay.test.Echo/Unary', 'content-type': contentType, te: 'trailers' });
    stream.setTimeout(5000, () => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error('no end of the answer within 5 s'));
    });
    const answer: Answer = { headers: {}, endedWithHeaders: false, dataFrames: 0, body: '' };
    stream.on('response', (headers, flags) => {
      answer.headers = headers;
      answer.endedWithHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      answer.dataFrames++;
      answer.body += chunk;
    });
    stream.on('end', () => resolve(answer));
    stream.on('error', reject);
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

test('a stage’s 429 with errorCode to a gRPC call: trailers-only HEADERS, 200, grpc-status 14, its message, retry-after kept, no DATA', async () => {
  const session = await h2Front(await relayWith(rateLimited));
  const answer = await call(session, 'application/grpc');
  assert.is(answer.headers[':status'], 200);
  assert.is(answer.headers['content-type'], 'application/grpc');
  assert.is(answer.headers['grpc-status'], '14');
  assert.is(answer.headers['grpc-message'], '429 Too Many Requests: slow down, %C3%BC (ERR_RATE_LIMITED)');
  assert.is(answer.headers['retry-after'], '7');
  assert.is(answer.headers['ratelimit-remaining'], '0');
  assert.is(answer.headers['content-length'], undefined, 'the text body’s length is gone with it');
  assert.ok(answer.endedWithHeaders, 'END_STREAM on the HEADERS frame');
  assert.is(answer.dataFrames, 0);
});

test('a stage’s 413 with errorCode and Connection: close (bodyLimit’s shape) to a gRPC+proto call: grpc-status 2 (UNKNOWN) with the message', async () => {
  const body = Buffer.from('413 Content Too Large: the request body is larger than this service accepts (ERR_BODY_TOO_LARGE)\n');
  const tooLarge = (): ProxyResponse => ({ ...textResponse(413, body, { connection: 'close' }), errorCode: 'ERR_BODY_TOO_LARGE' });
  const session = await h2Front(await relayWith(tooLarge));
  const answer = await call(session, 'application/grpc+proto');
  assert.is(answer.headers[':status'], 200);
  assert.is(answer.headers['grpc-status'], '2');
  assert.is(answer.headers['grpc-message'], '413 Content Too Large: the request body is larger than this service accepts (ERR_BODY_TOO_LARGE)');
  assert.ok(answer.endedWithHeaders);
});

test('an error answer whose body is a stream of unknown length: grpc-message is the status text, the stream is not waited for', async () => {
  const endless = new PassThrough();
  const streamed = (): ProxyResponse => ({ status: 503, statusMessage: '', headers: { 'content-type': 'text/plain' }, body: endless, errorCode: 'ERR_BUSY' });
  const session = await h2Front(await relayWith(streamed));
  const answer = await call(session, 'application/grpc');
  assert.is(answer.headers['grpc-status'], '14');
  assert.is(answer.headers['grpc-message'], '503 Service Unavailable');
  assert.ok(endless.destroyed, 'the unread body is released');
});

test('a short body that never ends: the client who cancels is not held, nothing stays in flight', async () => {
  const stalled = new PassThrough();
  const relay = await relayWith(() => ({ status: 429, statusMessage: '', headers: { 'content-length': '10' }, body: stalled, errorCode: 'ERR_RATE_LIMITED' }));
  const session = await h2Front(relay);
  const stream = session.request({ ':method': 'POST', ':path': '/x', 'content-type': 'application/grpc' });
  stream.on('error', () => {});
  stream.end();
  assert.ok(await waitFor(() => relay.inFlight === 1, 2000));
  stream.close(http2.constants.NGHTTP2_CANCEL);
  assert.ok(await waitFor(() => relay.inFlight === 0, 2000), 'the call ended with its client');
  assert.ok(stalled.destroyed);
});

test('untouched: a stage’s answer without errorCode, an error answer that is gRPC already, gRPC-Web, and other content types', async () => {
  const plain = (): ProxyResponse => textResponse(429, limitedBody);
  const plainAnswer = await call(await h2Front(await relayWith(plain)), 'application/grpc');
  assert.is(plainAnswer.headers[':status'], 429, 'no errorCode: not a local error answer');
  assert.is(plainAnswer.body, limitedBody.toString());
  const grpcAlready = (): ProxyResponse => ({ status: 200, statusMessage: '', headers: { 'content-type': 'application/grpc', 'grpc-status': '8', 'grpc-message': 'quota' }, body: null, errorCode: 'ERR_QUOTA' });
  const grpcAnswer = await call(await h2Front(await relayWith(grpcAlready)), 'application/grpc');
  assert.is(grpcAnswer.headers['grpc-status'], '8');
  assert.is(grpcAnswer.headers['grpc-message'], 'quota');
  const session = await h2Front(await relayWith(rateLimited));
  for (const type of ['application/grpc-web', 'application/grpc-web+proto', 'application/json']) {
    const answer = await call(session, type);
    assert.is(answer.headers[':status'], 429, type);
    assert.is(answer.headers['grpc-status'], undefined, type);
    assert.is(answer.body, limitedBody.toString(), type);
  }
});

test('an HTTP/1.1 front: a gRPC content type still gets the stage’s 429 as it is', async () => {
  const served = await serveRelay(await relayWith(rateLimited));
  closers.push(() => served.close());
  const answer = await fetchRaw(`${served.url}/relay.test.Echo/Unary`, { method: 'POST', headers: { 'content-type': 'application/grpc' }, body: Buffer.from([0, 0, 0, 0, 0]) });
  assert.is(answer.status, 429);
  assert.is(answer.headers['retry-after'], '7');
  assert.is(answer.text, limitedBody.toString());
});

test('Readable bodies of several chunks are read whole for the message', async () => {
  const chunked = (): ProxyResponse => ({
    status: 403,
    statusMessage: '',
    headers: { 'content-length': '20' },
    body: Readable.from([Buffer.from('403 Forbidden: '), Buffer.from('nope\n')]),
    errorCode: 'ERR_DENIED',
  });
  const answer = await call(await h2Front(await relayWith(chunked)), 'application/grpc');
  assert.is(answer.headers['grpc-status'], '7');
  assert.is(answer.headers['grpc-message'], '403 Forbidden: nope');
});

test.run();
