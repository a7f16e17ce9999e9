// What a response whose body a stage changed keeps for the client and for the stages outside: the
// chosen target, the trailer fields (less digests of the old bytes).
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, createRelay, parseTarget, stageContext, type ProxyRequest, type ProxyResponse, type Stage } from '@relay/core';
import { serveRelay, startUpstream } from '@relay/testkit';
import { compress, transformResponse, transformResponseStream } from '../src/index.js';

const text = 'lorem ipsum dolor sit amet '.repeat(100);

/** GET with `TE: trailers` and gzip accepted: the decoded body and the trailer fields received. */
function getWithTrailers(url: string): Promise<{ body: string; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { te: 'trailers', 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => {
        const raw = Buffer.concat(parts);
        resolve({ body: (res.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(raw) : raw).toString(), trailers: res.trailers });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const upperCase = () =>
  new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk.toString().toUpperCase());
    },
  });

test('compress() and transformResponseStream(): the trailers go on, a digest of the old bytes does not', async () => {
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/html', trailer: 'server-timing, content-digest' });
    res.write(text);
    res.addTrailers({ 'server-timing': 'db;dur=53', 'content-digest': 'sha-256=:AAAA:' });
    res.end();
  });
  for (const stages of [[compress()], [transformResponseStream(upperCase)]] as Stage[][]) {
    const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
    try {
      const answer = await getWithTrailers(relay.url);
      assert.ok(answer.body.toLowerCase() === text, stages[0]!.name);
      assert.is(answer.trailers['server-timing'], 'db;dur=53', stages[0]!.name);
      assert.is(answer.trailers['content-digest'], undefined, stages[0]!.name);
    } finally {
      await relay.close();
    }
  }
  await upstream.close();
});

test('transformResponse(): target and trailers go on; a digest trailer goes only when the body changed', async () => {
  const target = parseTarget('http://10.0.0.7:8000');
  const client = new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' });
  const request: ProxyRequest = { method: 'GET', path: '/x', headers: {}, body: null, replayBody: null, attempt: 1, client };
  const upstreamAnswer = (): ProxyResponse => ({
    status: 200,
    statusMessage: '',
    headers: { 'content-type': 'text/plain' },
    body: Readable.from([Buffer.from('hello')]),
    target,
    trailers: () => ({ 'server-timing': 'db;dur=1', 'repr-digest': 'sha-256=:AAAA:' }),
  });
  const rewritten = await transformResponse((body) => body.toUpperCase()).wrap(async () => upstreamAnswer(), stageContext())(request);
  assert.is(rewritten.target, target);
  assert.equal(rewritten.trailers?.(), { 'server-timing': 'db;dur=1' });
  const kept = await transformResponse(() => undefined).wrap(async () => upstreamAnswer(), stageContext())(request);
  assert.is(kept.target, target);
  assert.equal(kept.trailers?.(), { 'server-timing': 'db;dur=1', 'repr-digest': 'sha-256=:AAAA:' });
});

test.run();
