// healthCheck.protocol: 'http2': checks of h2c targets over node:http2, one session per target, closed by stop().
import { createServer as createH2cServer, type Http2Session } from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listenHttp2, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';

/** An h2c upstream whose /health answers as `state.status` says, counting checks and open sessions. */
async function h2cUpstream(): Promise<{ url: string; state: { status: number; checks: number; sessions: Set<Http2Session> }; close: () => Promise<void> }> {
  const state = { status: 200, checks: 0, sessions: new Set<Http2Session>() };
  const server = createH2cServer();
  server.on('session', (session: Http2Session) => {
    state.sessions.add(session);
    session.on('close', () => state.sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    if (headers[':path'] === '/health') state.checks++;
    stream.respond({ ':status': headers[':path'] === '/health' ? state.status : 200 });
    stream.end('ok');
  });
  const up = await listenHttp2(server);
  return { url: up.url, state, close: up.close };
}

test("protocol 'http2': checks reuse one session per target, mark a failing target unhealthy and back, and stop() closes the sessions", async () => {
  const up = await h2cUpstream();
  const pool = balance({ targets: [up.url], healthCheck: { path: '/health', interval: 30, timeout: 1000, healthyThreshold: 1, unhealthyThreshold: 2, protocol: 'http2' } });
  try {
    await pool.start();
    assert.ok(await waitFor(() => up.state.checks >= 3, 3000), 'checks run over HTTP/2');
    assert.is(up.state.sessions.size, 1, 'one session carries every check');
    assert.ok(pool.targets()[0]!.healthy);
    up.state.status = 503;
    assert.ok(await waitFor(() => !pool.targets()[0]!.healthy, 3000), 'a 503 over HTTP/2 fails the check');
    up.state.status = 200;
    assert.ok(await waitFor(() => pool.targets()[0]!.healthy, 3000), 'healthy again');
    pool.stop();
    assert.ok(await waitFor(() => up.state.sessions.size === 0, 2000), `${up.state.sessions.size} check session(s) still open after stop()`);
  } finally {
    pool.stop();
    await up.close();
  }
});

test("protocol 'http2': a check that gets no response head within timeout fails, and the next one opens a new session", async () => {
  let opened = 0;
  const server = createH2cServer();
  server.on('session', () => opened++);
  server.on('stream', () => {}); // never answered
  const up = await listenHttp2(server);
  const pool = balance({ targets: [up.url], healthCheck: { path: '/health', interval: 50, timeout: 100, unhealthyThreshold: 2, protocol: 'http2' } });
  try {
    await pool.start();
    assert.ok(await waitFor(() => !pool.targets()[0]!.healthy, 3000), 'an unanswered check fails');
    assert.ok(await waitFor(() => opened >= 2, 3000), `a timed-out check's session is replaced (${opened} opened)`);
  } finally {
    pool.stop();
    await up.close();
  }
});

test('healthCheck.protocol is checked', () => {
  assert.throws(() => balance({ targets: [], healthCheck: { path: '/h', protocol: 'h2' as 'http2' } }), /healthCheck.protocol must be 'http1' or 'http2', got h2/);
});

test.run();
