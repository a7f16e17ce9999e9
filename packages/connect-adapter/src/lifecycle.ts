import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { assertKnownKeys, type Relay } from '@relay/core';
import { assertTimeout } from '@relay/core/transport';

/** The part of a relay the lifecycle drives. */
export type LifecycleRelay = Pick<Relay, 'startup' | 'shutdown'>;

/** Every relay of an app, started and stopped together: see `relayLifecycle`. */
export interface RelayLifecycle {
  /** The relays, each once. */
  readonly relays: readonly LifecycleRelay[];
  /**
   * Starts every relay (in parallel); call it before the server listens. When one fails, the
   * others are shut down again and the first error is thrown.
   */
  startup(): Promise<void>;
  /** Shuts every relay down (in parallel; idempotent): each drains up to `timeout`, or its own `shutdownTimeout`. */
  shutdown(options?: { timeout?: number }): Promise<void>;
  /**
   * Stops a server and its relays gracefully: the server stops accepting connections, the
   * relays refuse new requests (503), drain in-flight ones and close relayed WebSockets
   * (1001), idle connections are closed, and whatever is still open after `timeout` ms
   * (default 10 000) is cut. Resolves when the server has closed.
   */
  close(server: HttpServer | HttpsServer, options?: { timeout?: number }): Promise<void>;
}

/**
 * Starts and stops every relay an app mounts, the way the Python guide's `on_startup` /
 * `on_shutdown` do: `startup()` before listening, `close(server)` (or `shutdown()`) on the
 * way out. `relays` is a list, or the same `{ mountPath: relay }` object given to
 * `routeUpgrades`; a relay listed twice is driven once.
 *
 * @example
 * const relays = relayLifecycle([auth, api]);
 * await relays.startup();
 * const server = app.listen(8080);
 * process.once('SIGTERM', () => relays.close(server));
 */
export function relayLifecycle(relays: Iterable<LifecycleRelay> | Readonly<Record<string, LifecycleRelay>>): RelayLifecycle {
  if (relays === null || typeof relays !== 'object') throw new TypeError('relays must be a list of relays or an object of mount paths to relays');
  const list = Symbol.iterator in relays ? Array.from(relays as Iterable<LifecycleRelay>) : Object.values(relays);
  list.forEach((relay, index) => {
    if (relay === null || typeof relay !== 'object' || typeof relay.startup !== 'function' || typeof relay.shutdown !== 'function') {
      throw new TypeError(`relays[${index}] must be a relay made by createRelay() from @relay/core`);
    }
  });
  return new Lifecycle([...new Set(list)]);
}

const timeoutOptionNames: readonly string[] = ['timeout'];

/** `{ timeout }` of `shutdown` and `close`: a misspelled `timout` would drain for the default 10 s, silently. */
function checkTimeoutOptions(options: unknown, method: string): void {
  if (options === null || typeof options !== 'object') throw new TypeError(`${method}(options) needs an options object: { timeout }`);
  assertKnownKeys(options, timeoutOptionNames, method);
}

class Lifecycle implements RelayLifecycle {
  constructor(readonly relays: readonly LifecycleRelay[]) {}

  async startup(): Promise<void> {
    const results = await Promise.allSettled(this.relays.map((relay) => relay.startup()));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed === undefined) return;
    await Promise.allSettled(this.relays.map((relay) => relay.shutdown({ timeout: 0 })));
    throw failed.reason;
  }

  async shutdown(options: { timeout?: number } = {}): Promise<void> {
    checkTimeoutOptions(options, 'relayLifecycle.shutdown');
    if (options.timeout !== undefined) assertTimeout(options.timeout, 'timeout');
    const results = await Promise.allSettled(this.relays.map((relay) => relay.shutdown(options)));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async close(server: HttpServer | HttpsServer, options: { timeout?: number } = {}): Promise<void> {
    checkTimeoutOptions(options, 'relayLifecycle.close');
    const timeout = options.timeout ?? 10_000;
    // Before the server stops accepting: past node's timer limit the cut would come after 1 ms.
    assertTimeout(timeout, 'timeout');
    const started = Date.now();
    // The callback runs when the last connection has closed (or at once, with an error, when it was not listening).
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // server.close() closes the connections idle now; a keep-alive connection whose response
    // finishes later would stay open until its keepAliveTimeout or the deadline. Node offers no
    // event for "went idle", so sweep on an interval, as its own connectionsCheckingInterval does.
    const sweep = setInterval(closeIdle, idleSweepMs, server);
    let cut: NodeJS.Timeout | null = null;
    try {
      // The relays answer what they still hold at the deadline (503, or an aborted stream).
      await this.shutdown({ timeout });
      closeIdle(server);
      // The app's own requests get what is left of the budget; answers just written get a moment to leave.
      cut = setTimeout(cutConnections, Math.max(timeout - (Date.now() - started), flushGrace), server);
      await closed;
    } finally {
      clearInterval(sweep);
      if (cut !== null) clearTimeout(cut);
    }
  }
}

/** How long answers written at the deadline get to leave before their connections are cut, in ms. */
const flushGrace = 100;

/**
 * How often `close` closes the connections that went idle, in ms: the most a finished keep-alive
 * exchange holds the close up. Each sweep only walks the server's connection list.
 */
const idleSweepMs = 250;

/** Closes connections not sending a request or awaiting a response (their last answer has left). */
function closeIdle(server: HttpServer | HttpsServer): void {
  server.closeIdleConnections();
}

function cutConnections(server: HttpServer | HttpsServer): void {
  server.closeAllConnections();
}
