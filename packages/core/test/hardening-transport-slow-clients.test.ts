// Issue 13, items 5 and 8: slow clients are the client's side. A paused reader is governed by
// `slowClientTimeout` (never `timeout.read`, never logged as the upstream's fault), and slow
// uploads cannot hold every pooled connection while an honest request waits.
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor, type MemoryLogger } from '@relay/testkit';
import { createRelay, httpTransport, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';

const MiB = 1024 * 1024;
const bodySize = 48 * MiB;

/** An upstream that streams `bodySize` bytes as fast as the relay reads them. */
function bigBody() {
  return startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': bodySize });
    const chunk = Buffer.alloc(64 * 1024, 97);
    let sent = 0;
    const pump = () => {
      while (sent < bodySize) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
}

/** Downloads `url`, pausing reading `pauseMs` after the head (`Infinity`: never reads on). */
function pausedDownload(url: string, pauseMs: number): Promise<{ bytes: number; complete: boolean }> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.pause();
      if (pauseMs !== Infinity) setTimeout(() => res.resume(), pauseMs);
      const done = () => resolve({ bytes, complete: res.complete });
      res.on('end', done);
      // A paused response emits no `close` when its connection is cut: watch the connection.
      req.on('close', done);
      res.on('error', () => {});
    });
    req.on('error', () => resolve({ bytes: -1, complete: false }));
  });
}

const blamesUpstream = (logger: MemoryLogger) => logger.lines.filter((line) => /upstream/i.test(line.message) && line.level !== 'debug');

const transports: Array<[string, (options: { slowClientTimeout?: number; minUploadRate?: number; maxSockets?: number }) => Transport]> = [
  ['http', (options) => httpTransport(options)],
  ['got', (options) => gotTransport(options)],
  // undici's pool has no upload-rate rule (minUploadRate): it runs the slow-reader cases only.
  ['undici', ({ minUploadRate: _unsupported, ...options }) => undiciTransport(options)],
];

for (const [name, transport] of transports) {
  test(`${name}: a client that pauses reading longer than timeout.read still gets the whole body`, async () => {
    const upstream = await bigBody();
    const logger = memoryLogger();
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 300 }, transport: transport({ slowClientTimeout: 20_000 }), logger }));
    const result = await pausedDownload(`${served.url}/big`, 1_500);
    assert.is(result.bytes, bodySize, 'every byte arrived');
    assert.ok(result.complete);
    assert.equal(blamesUpstream(logger), [], 'no line blames the upstream');
    await served.close();
    await upstream.close();
  });

  test(`${name}: a client that pauses longer than slowClientTimeout is cut then, logged as the client's fault`, async () => {
    const upstream = await bigBody();
    const logger = memoryLogger();
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 300 }, transport: transport({ slowClientTimeout: 1_000 }), logger }));
    const started = Date.now();
    // Paused for 6 s: a paused socket cannot see its connection close, so it looks after resuming.
    const download = pausedDownload(`${served.url}/big`, 6_000);
    assert.ok(await waitFor(() => served.relay.inFlight === 0 && logger.lines.some((entry) => entry.fields.code === 'ERR_CLIENT_TIMEOUT'), 5_500), 'cut while paused');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900, `cut after ${elapsed} ms (slowClientTimeout 1 000, read 300)`);
    const result = await download;
    assert.ok(!result.complete && result.bytes < bodySize, `the download was cut (${result.bytes} bytes)`);
    const line = logger.lines.find((entry) => entry.fields.code === 'ERR_CLIENT_TIMEOUT')!;
    assert.not.match(`${line.message} ${String(line.fields.error)}`, /upstream/i);
    assert.equal(blamesUpstream(logger), [], 'no line blames the upstream');
    await served.close();
    await upstream.close();
  });

  test(`${name}: an event stream (no read timeout) whose client stops reading is cut after slowClientTimeout`, async () => {
    // Events as fast as the relay takes them: the client's side fills, and the relay pauses the stream.
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const event = `data: ${'x'.repeat(64 * 1024)}\n\n`;
      const pump = () => {
        while (res.write(event));
        res.once('drain', pump);
      };
      pump();
      res.on('close', () => res.removeAllListeners('drain'));
    });
    const logger = memoryLogger();
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 10_000 }, transport: transport({ slowClientTimeout: 800 }), logger }));
    const started = Date.now();
    const download = pausedDownload(`${served.url}/events`, 4_000);
    assert.ok(await waitFor(() => served.relay.inFlight === 0 && logger.lines.some((entry) => entry.fields.code === 'ERR_CLIENT_TIMEOUT'), 3_500), 'cut while paused');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 700 && elapsed < 3_500, `cut after ${elapsed} ms (slowClientTimeout 800, read 10 000, an event stream)`);
    assert.not.ok((await download).complete);
    await served.close();
    await upstream.close();
  });

  if (name === 'undici') continue;

  test(`${name}: slow uploads holding every pooled connection do not starve an honest GET`, async () => {
    const upstream = await startUpstream();
    const logger = memoryLogger();
    const served = await serveRelay(
      createRelay({ targetBaseUrl: upstream.url, timeout: { pool: 20_000 }, transport: transport({ maxSockets: 4 }), logger }),
    );
    // 8 clients trickle one body byte every 200 ms: twice the pool.
    const tricklers: Socket[] = [];
    const answers: string[] = [];
    for (let i = 0; i < 8; i++) {
      const socket = connect(served.port, '127.0.0.1');
      socket.on('error', () => {});
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('close', () => answers.push(answer));
      socket.write(`POST /upload/${i} HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n`);
      const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write('b')), 200);
      socket.on('close', () => clearInterval(timer));
      tricklers.push(socket);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const started = Date.now();
    const honest = await fetchRaw(`${served.url}/honest`);
    const elapsed = Date.now() - started;
    assert.is(honest.status, 200);
    assert.ok(elapsed < 5_000, `the honest GET took ${elapsed} ms (pool timeout 20 000)`);
    assert.ok(await waitFor(() => answers.some((answer) => answer.startsWith('HTTP/1.1 408 ')), 5_000), 'a slow upload was cut with 408');
    const line = logger.lines.find((entry) => entry.fields.code === 'ERR_CLIENT_TIMEOUT');
    assert.ok(line, 'logged');
    assert.not.match(`${line!.message} ${String(line!.fields.error)}`, /upstream/i);
    for (const socket of tricklers) socket.destroy();
    assert.ok(await waitFor(() => served.relay.inFlight === 0, 5_000), `nothing left in flight (${served.relay.inFlight})`);
    await served.close();
    await upstream.close();
  });

  test(`${name}: a slow upload is left alone while nobody waits for its connection`, async () => {
    const upstream = await startUpstream();
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: transport({ maxSockets: 4 }) }));
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(served.port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.write('POST /slow HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Length: 8\r\n\r\n');
      let sent = 0;
      const timer = setInterval(() => {
        socket.write('b');
        if (++sent === 8) clearInterval(timer);
      }, 250);
    });
    assert.match(answer, /^HTTP\/1.1 200 /);
    assert.is(upstream.requests[0]!.body.toString(), 'bbbbbbbb');
    await served.close();
    await upstream.close();
  });
}

test('slowClientTimeout and minUploadRate are checked', () => {
  assert.throws(() => httpTransport({ slowClientTimeout: -1 }), /slowClientTimeout/);
  assert.throws(() => gotTransport({ minUploadRate: Number.NaN }), /minUploadRate/);
});

test.run();
