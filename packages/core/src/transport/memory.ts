import { Agent, createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { bindHttpExchange } from './http.js';
import { memorySocketPair } from './memory-socket.js';
import type { BoundTransport, Logger, Transport, TransportConfig } from '../types.js';

/**
 * A transport whose upstream is a node:http request listener in the same process: an Express
 * or Connect app, or a plain `(req, res) => {}`. No port is opened. Each upstream connection
 * is a pair of in-memory sockets carrying real HTTP/1.1, parsed by node:http on both sides,
 * so status, headers (two Set-Cookie stay two), streaming with backpressure, keep-alive,
 * read and write timeouts, client aborts (`res` emits `close` upstream) and upstream failures
 * (a destroyed response, invalid HTTP) behave and fail with the same `RelayError` codes as
 * over the network. A listener that throws, or returns a promise that rejects, resets its
 * connection (502 `ERR_UPSTREAM_RESET`, or an aborted response once it has started) and the
 * error is logged at `error` with its stack; it never crashes the process.
 *
 * `targetBaseUrl` still sets the upstream `Host`, path prefix and scheme (`https:` marks the
 * upstream's sockets `encrypted`); nothing is resolved or connected.
 *
 * @example
 * const upstream = express().get('/test', (_req, res) => res.json({ message: 'Hello from upstream' }));
 * const relay = createRelay({ targetBaseUrl: 'http://upstream', mountPath: '/proxy', transport: inMemoryTransport(upstream) });
 */
export function inMemoryTransport(listener: RequestListener): Transport {
  if (typeof listener !== 'function') {
    throw new TypeError('inMemoryTransport(listener) needs a node:http request listener: (req, res) => void, or an Express/Connect app');
  }
  return {
    kind: 'http',
    name: 'memory',
    bind(config: TransportConfig): BoundTransport {
      const encrypted = config.target.protocol === 'https:';
      const server = createServer(upstreamListener(listener, config.logger));
      return bindHttpExchange(config, function createAgent(): Agent {
        return new MemoryAgent(server, encrypted);
      });
    },
  };
}

/** A keep-alive agent whose connections are in-memory socket pairs served by `server`. */
class MemoryAgent extends Agent {
  constructor(
    private readonly server: Server,
    private readonly encrypted: boolean,
  ) {
    // No pool limit: connections cost nothing, so a request never waits for one.
    super({ keepAlive: true, scheduling: 'lifo', timeout: 30_000 });
  }

  override createConnection(): Duplex {
    const { client, server } = memorySocketPair({ encrypted: this.encrypted });
    this.server.emit('connection', server);
    return client;
  }
}

/** Calls the user's listener, turning a throw or a rejection into a reset connection and a log line. */
function upstreamListener(listener: RequestListener, logger: Logger): RequestListener {
  return function inMemoryUpstream(req: IncomingMessage, res: ServerResponse): void {
    let result: unknown;
    try {
      result = listener(req, res);
    } catch (error) {
      upstreamFailed(logger, req, res, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (error: unknown) => upstreamFailed(logger, req, res, error));
    }
  };
}

function upstreamFailed(logger: Logger, req: IncomingMessage, res: ServerResponse, error: unknown): void {
  logger.error(
    {
      method: req.method,
      path: req.url,
      error: error instanceof Error ? error.message : String(error),
      stack: error instanceof Error ? error.stack : undefined,
    },
    'in-memory upstream listener threw: its connection is reset',
  );
  // What a crashed upstream process looks like from the relay: the connection goes away.
  res.destroy();
  req.socket.destroy();
}
