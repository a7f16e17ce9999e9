// The gateway's programmatic API checks its options when called: a TypeError or RangeError naming
// the option, before anything listens; a serve that fails once listening leaves nothing open.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, createGateway, createLogger, loadConfig, runPrimary, serve, type RunningGateway } from '../src/index.js';
import type { Logger } from '@relay/core';

const dir = mkdtempSync(join(tmpdir(), 'api-options-checks-'));
const quiet = createLogger({ level: 'error', stream: { write: () => true } as never });

function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const simple = () => configFile('simple.yaml', 'listen:\n  - host: 127.0.0.1\n    port: 0\nroutes:\n  - match: { path: /api }\n    upstream: http://127.0.0.1:9\n');

/** Records every node:http server that starts listening until `stop()`; the test closes those still open. */
function trackServers(): { listening: () => Server[]; seenCount: () => number; stop: () => void } {
  const seen = new Set<Server>();
  const proto = Server.prototype as unknown as { listen: (...args: unknown[]) => unknown };
  const hadOwn = Object.hasOwn(proto, 'listen');
  const realListen = proto.listen;
  proto.listen = function trackedListen(this: Server, ...args: unknown[]) {
    seen.add(this);
    return realListen.apply(this, args);
  };
  return {
    listening: () => [...seen].filter((server) => server.listening),
    seenCount: () => seen.size,
    stop: () => {
      if (hadOwn) proto.listen = realListen;
      else delete (proto as { listen?: unknown }).listen;
    },
  };
}

test('createGateway(loaded, {}) without a logger throws a TypeError naming logger', async () => {
  const loaded = await loadConfig(simple());
  let gateway: ReturnType<typeof createGateway> | null = null;
  try {
    gateway = createGateway(loaded, {} as never);
  } catch (error) {
    assert.ok(error instanceof TypeError, String(error));
    assert.match((error as Error).message, /logger/);
    return;
  }
  await gateway.shutdown(100).catch(() => {});
  assert.unreachable('createGateway accepted options without a logger (it fails later, at its first log line)');
});

test('createGateway: a logger without methods, metrics and view that are not functions/objects are refused naming them', async () => {
  const loaded = await loadConfig(simple());
  for (const [option, options] of [
    ['logger', { logger: { info: 1 } }],
    ['metrics', { logger: quiet, metrics: 'yes' }],
    ['view', { logger: quiet, view: 5 }],
  ] as const) {
    let gateway: ReturnType<typeof createGateway> | null = null;
    try {
      gateway = createGateway(loaded, options as never);
    } catch (error) {
      assert.match((error as Error).message, new RegExp(option), `${option}: ${(error as Error).message}`);
      continue;
    }
    await gateway.shutdown(100).catch(() => {});
    assert.unreachable(`createGateway accepted a bad ${option}`);
  }
});

test('createGateway(loaded, { limitStore: 5 }) names limitStore, not a line of the config file', async () => {
  const loaded = await loadConfig(configFile('limited.yaml', 'listen:\n  - port: 0\nroutes:\n  - upstream: http://127.0.0.1:9\n    rateLimit: { points: 5, duration: 1000 }\n'));
  let gateway: ReturnType<typeof createGateway> | null = null;
  try {
    gateway = createGateway(loaded, { logger: quiet, limitStore: 5 } as never);
  } catch (error) {
    // Not a ConfigError "limited.yaml:5: routes[0].rateLimit: limitStore is not a function": the caller's
    // mistake is not a problem of the file.
    assert.not.ok(error instanceof ConfigError, (error as Error).message);
    assert.ok(error instanceof TypeError, String(error));
    assert.match((error as Error).message, /limitStore/);
    return;
  }
  await gateway.shutdown(100).catch(() => {});
  assert.unreachable('createGateway accepted limitStore: 5');
});

test('serve({ config }) without a logger rejects naming logger, and leaves nothing listening', async () => {
  const tracker = trackServers();
  let running: RunningGateway | null = null;
  let failure: Error | null = null;
  try {
    running = await serve({ config: simple(), watch: false } as never);
  } catch (error) {
    failure = error as Error;
  } finally {
    tracker.stop();
  }
  const left = tracker.listening();
  for (const server of left) {
    server.closeAllConnections();
    server.close();
  }
  await running?.stop();
  assert.ok(failure !== null, 'serve started without a logger');
  // Not "Cannot read properties of undefined (reading 'info')", thrown after the listener was up, which stayed open.
  assert.ok(/logger/.test(failure!.message) && left.length === 0, `${failure!.message}; listeners left open: ${left.length}`);
});

test('serve({ port: "8080x" }) is refused naming port, not a Unix socket named 8080x in the working directory; so are 70000, 80.5, -1', async () => {
  for (const port of ['8080x', 70_000, 80.5, -1]) {
    let running: RunningGateway | null = null;
    let failure: Error | null = null;
    try {
      running = await serve({ config: simple(), logger: quiet, watch: false, port: port as never });
    } catch (error) {
      failure = error as Error;
    }
    const address = running?.servers[0]?.address();
    await running?.stop();
    assert.ok(failure instanceof RangeError, `port ${JSON.stringify(port)}: serve listened on ${JSON.stringify(address)}`);
    assert.match(failure!.message, /serve: port must be a port number from 0 to 65535/);
  }
});

test('serve: a failure once listening (the logger throws at "listening") closes the listeners before it rejects', async () => {
  const throwing: Logger = {
    ...quiet,
    info: (_fields, message) => {
      if (message === 'listening') throw new Error('log stream closed');
    },
  };
  const tracker = trackServers();
  let running: RunningGateway | null = null;
  let failure: Error | null = null;
  try {
    running = await serve({ config: simple(), logger: throwing, watch: false });
  } catch (error) {
    failure = error as Error;
  } finally {
    tracker.stop();
  }
  const left = tracker.listening();
  for (const server of left) {
    server.closeAllConnections();
    server.close();
  }
  await running?.stop();
  assert.ok(failure !== null, 'serve resolved although its logger threw');
  assert.match(failure!.message, /log stream closed/);
  assert.is(tracker.seenCount(), 1, 'the listener started');
  assert.is(left.length, 0, 'a listener stayed open');
});

test('runPrimary({ workers: -1 }) and { workers: 2.5 } reject naming workers', async () => {
  for (const workers of [-1, 2.5]) {
    const error = await runPrimary({ config: simple(), workers, logger: quiet }).then(
      () => null,
      (caught: Error) => caught,
    );
    assert.ok(error !== null, `runPrimary resolved with workers: ${workers}`);
    // Not "Invalid array length", from the worker table.
    assert.match(error!.message, /workers/, `workers: ${workers}: ${error!.message}`);
  }
});

test('createLogger: pretty and base of the wrong type are refused naming them', () => {
  assert.throws(() => createLogger({ pretty: 'yes', stream: { write: () => true } } as never), /pretty/);
  // A string base would spread into every line as "0", "1" … fields.
  assert.throws(() => createLogger({ base: 'worker-2', stream: { write: () => true } } as never), /base/);
  assert.throws(() => createLogger({ base: ['worker-2'], stream: { write: () => true } } as never), /base/);
  const lines: string[] = [];
  createLogger({ pretty: false, base: { worker: 2 }, stream: { write: (line: string) => lines.push(line) > 0 } as never }).info({}, 'ok');
  assert.is(JSON.parse(lines[0]!).worker, 2);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
