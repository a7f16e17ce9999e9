// Review s35 (leaks): core's own messages and log lines never carry a secret: not the password of a
// target URL, not the query of a request target (`logQuery: false` is the default).
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, memoryLogger } from '@relay/testkit';
import { createRelay, parseTarget, type Stage, type UpgradeTransport } from '../src/index.js';

const secret = 'SECRET-TOKEN-42';

function thrownMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a throw');
}

test('createRelay and parseTarget: the TypeError for an unparseable target URL never repeats its password', () => {
  for (const url of [`http://svc:${secret}@[10.0.0.5:8000`, `http://svc:${secret}@10.0.0.5:80x`]) {
    const fromRelay = thrownMessage(() => createRelay({ targetBaseUrl: url }));
    assert.match(fromRelay, /targetBaseUrl/);
    assert.not.ok(fromRelay.includes(secret), `createRelay's error shows the password: ${fromRelay}`);
    // balance() and router() check their targets with parseTarget and prefix its message.
    const fromParse = thrownMessage(() => parseTarget(url));
    assert.not.ok(fromParse.includes(secret), `parseTarget's error shows the password: ${fromParse}`);
  }
});

/** A WebSocket transport the test's stage never lets a handshake reach. */
const unusedWebSocket: UpgradeTransport = {
  kind: 'upgrade',
  name: 'unused',
  bind: () => ({ handle: () => Promise.reject(new Error('not reached')), startup() {}, shutdown() {} }),
};

test('a WebSocket handshake a stage answers 101 without a hand-off: the error line shows the path without its query', async () => {
  const answers101: Stage = {
    name: 'answers-101',
    wrap: () =>
      function answers101Stage() {
        return Promise.resolve({ status: 101, statusMessage: '', headers: {}, body: null });
      },
  };
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9', logger, stages: [answers101], websocket: unusedWebSocket });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const url = new URL(await listen(server));
  try {
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(url.port), '127.0.0.1');
      let data = '';
      const done = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(data);
      };
      const timer = setTimeout(done, 2000);
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString('latin1');
        if (data.includes('\r\n\r\n')) done();
      });
      socket.on('error', done);
      socket.on('close', done);
      socket.write(
        `GET /chat?access_token=${secret} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
    });
    assert.match(answer, /^HTTP\/1\.1 500 /);
    const line = logger.lines.find((entry) => entry.message.includes('without an upgrade hand-off'));
    assert.ok(line !== undefined, `the failure is logged: ${JSON.stringify(logger.lines)}`);
    assert.not.ok(JSON.stringify(logger.lines).includes(secret), `a log line shows the query's token: ${JSON.stringify(line)}`);
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
  }
});

test.run();
