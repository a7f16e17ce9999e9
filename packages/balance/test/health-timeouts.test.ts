import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { balance } from '../src/index.js';

// Health checks against targets that misbehave at the TCP level: one that accepts and never
// answers, one that trickles its response head.

/** A raw TCP target: `onSocket` decides what each connection gets. */
async function tcp(onSocket: (socket: Socket) => void): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => count,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}


test('a target that hangs: checks never pile up (one at a time), each fails after its timeout', async () => {
  const hung = await tcp(() => {});
  const pool = balance({ targets: [hung.url], healthCheck: { path: '/health', interval: 50, timeout: 400, unhealthyThreshold: 2 } });
  try {
    await pool.start();
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    assert.ok(hung.connections() <= 4, `${hung.connections()} check connections in 1.3 s with a 400 ms timeout`);
    assert.is(pool.targets()[0]!.healthy, false);
  } finally {
    pool.stop();
    await hung.close();
  }
});

test('healthCheck.timeout is the longest wait for the response head: a target that trickles its head fails the check', async () => {
  const timers = new Set<NodeJS.Timeout>();
  const trickle = await tcp((socket) => {
    // A head that never ends: one header byte every 200 ms.
    socket.write('HTTP/1.1 200 OK\r\nx-slow: ');
    const timer = setInterval(() => socket.write('a'), 200);
    timers.add(timer);
    socket.on('close', () => clearInterval(timer));
  });
  const pool = balance({ targets: [trickle.url], healthCheck: { path: '/health', interval: 100, timeout: 500, unhealthyThreshold: 1 } });
  try {
    await pool.start();
    const started = Date.now();
    let turned = false;
    while (Date.now() - started < 2_500 && !turned) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      turned = !pool.targets()[0]!.healthy;
    }
    assert.ok(turned, 'no response head within the 500 ms timeout, yet after 2.5 s the target is still healthy (the timeout is an idle timeout: each byte resets it)');
  } finally {
    pool.stop();
    for (const timer of timers) clearInterval(timer);
    await trickle.close();
  }
});

test.run();
