// The proxies under test, one per child process. Each is set up the way its documentation shows,
// with the same keep-alive pool to the upstream (UPSTREAM_SOCKETS sockets, LIFO, 30 s idle).
// Libraries are imported inside each starter so a process loads only the proxy it runs.
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RelayOptions, Stage, UpgradeTransport } from '@relay/core';
import type { ProxyName } from './settings.js';
import { UPSTREAM_IDLE_MS, UPSTREAM_SOCKETS } from './settings.js';
import { fastifyHttpProxyH2, relayGrpc, relayH2Front } from './proxies-h2.js';

/** A proxy's server; `listening` when the framework listened itself (fastify). */
export type Started = { server: Server; listening?: true } | { skipped: string };

/** The pool every node:http-based peer gets; the same settings as Relay's httpTransport builds. */
function keepAliveAgent(): Agent {
  return new Agent({
    keepAlive: true,
    maxSockets: UPSTREAM_SOCKETS,
    maxFreeSockets: UPSTREAM_SOCKETS,
    scheduling: 'lifo',
    timeout: UPSTREAM_IDLE_MS,
  });
}

const poolOptions = { maxSockets: UPSTREAM_SOCKETS, maxFreeSockets: UPSTREAM_SOCKETS, idleTimeout: UPSTREAM_IDLE_MS };

/**
 * The floor: what any Node proxy pays. One http.request per request on a keep-alive agent,
 * headers copied as they came, bodies piped both ways. No hop-by-hop removal, no forwarding
 * headers, no timeouts, no client-abort propagation.
 */
function pipe(target: URL, websocket: boolean): Started {
  const agent = keepAliveAgent();
  const host = target.hostname;
  const port = Number(target.port);
  const server = createServer(function pipeRequest(req, res) {
    const upstream = request({ host, port, path: req.url, method: req.method, headers: req.headers, agent }, function pipeResponse(upstreamRes) {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    upstream.on('error', function pipeError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-length': 0 }).end();
    });
    req.pipe(upstream);
  });
  if (websocket) {
    server.on('upgrade', function pipeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      const upstream = request({ host, port, path: req.url, method: req.method, headers: req.headers, agent });
      upstream.on('upgrade', (upstreamRes, upstreamSocket, upstreamHead) => {
        let lines = 'HTTP/1.1 101 Switching Protocols\r\n';
        const raw = upstreamRes.rawHeaders;
        for (let i = 0; i < raw.length; i += 2) lines += `${raw[i]}: ${raw[i + 1]}\r\n`;
        socket.write(`${lines}\r\n`);
        if (upstreamHead.length > 0) socket.write(upstreamHead);
        if (head.length > 0) upstreamSocket.write(head);
        upstreamSocket.setNoDelay(true);
        upstreamSocket.pipe(socket).pipe(upstreamSocket);
        upstreamSocket.on('error', () => socket.destroy());
        socket.on('error', () => upstreamSocket.destroy());
        upstreamSocket.on('close', () => socket.destroy());
        socket.on('close', () => upstreamSocket.destroy());
      });
      upstream.on('response', (upstreamRes) => {
        upstreamRes.resume();
        socket.end(`HTTP/1.1 ${upstreamRes.statusCode} Refused\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      });
      upstream.on('error', () => socket.destroy());
      upstream.end();
    });
  }
  return { server };
}

/** http-proxy 1.18 with a keep-alive agent; `xfwd` and `changeOrigin` as Relay does by default. */
async function httpProxy(target: URL, websocket: boolean): Promise<Started> {
  const { default: createProxy } = await import('http-proxy');
  const proxy = createProxy.createProxyServer({ target: target.origin, agent: keepAliveAgent(), xfwd: true, changeOrigin: true });
  proxy.on('error', (_error, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502, { 'content-length': 0 }).end();
    else res.destroy();
  });
  const server = createServer((req, res) => proxy.web(req, res));
  if (websocket) server.on('upgrade', (req, socket, head) => proxy.ws(req, socket, head));
  return { server };
}

/**
 * @fastify/reply-from on fastify 5 with its default and recommended undici pool, sized like the
 * others. Request bodies pass through unparsed, the way its README and @fastify/http-proxy do it.
 */
async function replyFrom(target: URL, pool: URL[] | null = null): Promise<Started> {
  const { default: fastify } = await import('fastify');
  const { default: replyFromPlugin } = await import('@fastify/reply-from');
  const app = fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', function passThrough(_request, payload, done) {
    done(null, payload);
  });
  await app.register(replyFromPlugin, {
    // An array of origins: its README's balancing setup, an undici BalancedPool with these options per origin.
    base: pool === null ? target.origin : pool.map((origin) => origin.origin),
    undici: { connections: UPSTREAM_SOCKETS, pipelining: 1, keepAliveTimeout: 60_000 },
  });
  app.all('/*', function forward(request, reply) {
    return reply.from(request.url);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { server: app.server, listening: true };
}

/**
 * express-http-proxy on express 5. It sends `Connection: close` upstream unless told otherwise, so
 * its documented `proxyReqOptDecorator` hands it the keep-alive agent and drops that header;
 * everything else (streaming responses, request bodies read into memory first) is its default.
 */
async function expressHttpProxy(target: URL): Promise<Started> {
  const { default: express } = await import('express');
  const { default: proxy } = await import('express-http-proxy');
  const agent = keepAliveAgent();
  const app = express();
  app.use(
    proxy(target.origin, {
      proxyReqOptDecorator(options) {
        options.agent = agent;
        delete options.headers.connection;
        return options;
      },
    }),
  );
  return { server: createServer(app) };
}

/**
 * The `compression` middleware in front of http-proxy-middleware 3 on express 5: the usual way to
 * compress what an Express proxy relays. Same keep-alive agent; compression's defaults (1 KiB
 * threshold, gzip level 6, Brotli quality 4, br preferred), as compress() has.
 */
async function expressCompress(target: URL): Promise<Started> {
  const { default: express } = await import('express');
  const { default: compression } = await import('compression');
  const { createProxyMiddleware } = await import('http-proxy-middleware');
  const app = express();
  app.use(compression());
  app.use(createProxyMiddleware({ target: target.origin, agent: keepAliveAgent(), changeOrigin: true, xfwd: true }));
  return { server: createServer(app) };
}

interface WebSocketModule {
  websocket: (options?: { onClientMessage?: () => undefined; onUpstreamMessage?: () => undefined }) => UpgradeTransport;
}

/** The pass-through message hook of `relay-ws-hook`: every message is looked at and sent on as it is. */
function passThrough(): undefined {
  return undefined;
}

/** `@relay/ws` by name if the workspace links it, else the built package beside core; null if neither. */
async function loadRelayWs(): Promise<WebSocketModule | null> {
  const name = '@relay/ws';
  try {
    return (await import(name)) as WebSocketModule;
  } catch {
    const built = new URL('../../packages/ws/dist/index.js', import.meta.url);
    if (!existsSync(built)) return null;
    const module = (await import(built.href)) as Partial<WebSocketModule>;
    return typeof module.websocket === 'function' ? (module as WebSocketModule) : null;
  }
}

/** Relay from its built dist/ (plain node, no `source` condition): default, got, or with stages. */
async function relay(name: Extract<ProxyName, `relay${string}`>, target: URL, websocket: boolean, pool: URL[]): Promise<Started> {
  const core = await import('@relay/core');
  let ws: WebSocketModule | null = null;
  if (websocket) {
    ws = await loadRelayWs();
    if (ws === null) return { skipped: 'skipped: @relay/ws not built' };
  }
  let transport = core.httpTransport(poolOptions);
  if (name === 'relay-got') {
    const { gotTransport } = await import('@relay/core/got');
    transport = gotTransport(poolOptions);
  }
  if (name === 'relay-undici' || name === 'relay-fastify-undici') {
    // The same socket limit and idle time as the other rows' pools (undici keeps no separate idle count).
    const { undiciTransport } = await import('@relay/core/undici');
    transport = undiciTransport({ maxSockets: UPSTREAM_SOCKETS, idleTimeout: UPSTREAM_IDLE_MS });
  }
  // One h2c session to the upstream process's h2c port (main.ts gives relay-h2 that target).
  if (name === 'relay-h2') transport = core.http2Transport();
  const stages: Stage[] = [];
  if (name === 'relay-stages') {
    const [{ cookies }, { retry }, { headers }] = await Promise.all([import('@relay/cookies'), import('@relay/retry'), import('@relay/headers')]);
    // The order the cookies README recommends; each stage has real work on the small GET
    // (the upstream sets a cookie with a Domain; GET is retryable).
    stages.push(
      cookies({ rewriteDomain: () => '' }),
      retry({ maxRetries: 2, backoffFactor: 100, jitter: true }),
      headers({
        dropRequest: ['authorization'],
        extraRequest: { 'x-gateway': 'relay-bench' },
        dropResponse: ['x-powered-by'],
        extraResponse: { 'x-content-type-options': 'nosniff' },
      }),
    );
  }
  if (name === 'relay-ratelimit') {
    const { rateLimit } = await import('@relay/limits');
    // Per client address, a limit the load never reaches: the cost of counting and of the two IETF headers.
    stages.push(rateLimit({ points: 1_000_000_000, duration: 1000 }));
  }
  if (name === 'relay-balance') {
    const { balance } = await import('@relay/balance');
    // The upstream process's three ports: three origins, three keep-alive pools (reply-from-balance gets the same).
    stages.push(balance({ targets: pool.map((origin) => origin.origin) }));
  }
  if (name === 'relay-compress') {
    const { compress } = await import('@relay/body');
    stages.push(compress());
  }
  if (name === 'relay-observe' || name === 'relay-observe-als') stages.push(...(await observeStages({ sdk: true })));
  if (name === 'relay-observe-api') stages.push(...(await observeStages({ sdk: false })));
  if (name === 'relay-als' || name === 'relay-observe-als') await contextManagerOn();
  if (name === 'relay-routing') stages.push(await routingStage());
  const options: RelayOptions = { targetBaseUrl: target.href, transport, stages };
  if (ws !== null) {
    // relay-ws-hook: a message policy makes the sessions terminating (frames parsed and re-sent).
    options.websocket = name === 'relay-ws-hook' ? ws.websocket({ onClientMessage: passThrough, onUpstreamMessage: passThrough }) : ws.websocket();
  }
  const instance = core.createRelay(options);
  if (name === 'relay-fastify' || name === 'relay-fastify-undici') return relayFastify(instance);
  if (name === 'relay-express') return relayExpress(instance);
  if (name === 'relay-hono-fetch') return relayHonoFetch(instance);
  await instance.startup();
  const server = createServer(instance.handle);
  if (ws !== null) server.on('upgrade', instance.upgrade);
  return { server };
}

/**
 * The `relay` bin's serving path with one worker (`relay serve gateway.yaml`: config loaded and
 * validated, one route to the target, /healthz and /metrics on, the listener it starts itself),
 * against the `relay` row, the same relay written in code.
 */
async function relayGateway(target: URL): Promise<Started> {
  const { serve, createLogger } = await import('@relay/gateway');
  const dir = mkdtempSync(join(tmpdir(), 'relay-bench-gateway-'));
  const config = join(dir, 'gateway.yaml');
  writeFileSync(config, ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', `  - upstream: ${target.origin}`, ''].join('\n'));
  const running = await serve({ config, logger: createLogger({ level: 'warn' }), watch: false });
  rmSync(dir, { recursive: true, force: true });
  // A listener without TLS is a node:http server (a TLS one would be node:http2's).
  return { server: running.servers[0] as Server, listening: true };
}

/**
 * `observe()` with everything on, set up as in production: a JSON access line per request (built
 * and handed to a sink that drops it, so no disk write is measured), prom-client series in a
 * registry, and spans from the OpenTelemetry SDK (W3C propagation, a batch processor with its
 * defaults) to an exporter that drops them. No context manager: the relay passes each span's parent
 * itself, so the row's process is plain Relay's (`relay-observe-als` adds the context manager to
 * both sides). `OBS_PARTS` (default `log,metrics,tracing`) prices one part at a time. Without
 * `sdk`, tracing goes to the API's global tracer with no SDK registered (`relay-observe-api`):
 * Relay's own calls are made, the API answers with non-recording spans, no span is kept.
 */
async function observeStages(options: { sdk: boolean }): Promise<Stage[]> {
  const [{ observe }, { Registry }, api, { W3CTraceContextPropagator }, sdk] = await Promise.all([
    import('@relay/observe'),
    import('prom-client'),
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace-base'),
  ]);
  const parts = (process.env.OBS_PARTS ?? 'log,metrics,tracing').split(',');
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const dropSpans = { export: (_spans: unknown[], done: (result: { code: number }) => void) => done({ code: 0 }), shutdown: async () => {} };
  const tracerProvider = new sdk.BasicTracerProvider({ spanProcessors: [new sdk.BatchSpanProcessor(dropSpans)] });
  const obs = observe({
    accessLog: parts.includes('log') && { stream: { write: (line: string) => line.length } },
    metrics: parts.includes('metrics') && { registry: new Registry() },
    tracing: parts.includes('tracing') && (options.sdk ? { tracerProvider } : true),
  });
  return [obs.request, obs.attempt];
}

/**
 * The process of an app with HTTP server instrumentation, minus the instrumentation's spans:
 * OpenTelemetry's AsyncLocalStorage context manager registered and a context entered once, which
 * switches Node 20's async hooks on for the process (the SDK's batch processor does the same on its
 * first export). Plain Relay otherwise: `relay-observe-als` against this row is what observe adds there.
 */
async function contextManagerOn(): Promise<void> {
  const [api, { AsyncLocalStorageContextManager }] = await Promise.all([import('@opentelemetry/api'), import('@opentelemetry/context-async-hooks')]);
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.context.with(api.context.active(), () => {});
}

/**
 * A gateway's routing in front of the request: a host condition that does not match, then three
 * routes, the bench's request taking the second, whose RegExp rewrite runs (and maps the path
 * onto itself, so the upstream answers as for the others).
 */
async function routingStage(): Promise<Stage> {
  const { headers } = await import('@relay/headers');
  const { rewritePath, routes, when } = await import('@relay/routing');
  return routes([
    { when: { path: '/api/v1/**' }, stages: [rewritePath({ '/api/v1': '/v1' })] },
    {
      when: { method: ['GET', 'HEAD'], path: '/small*' },
      stages: [when({ host: '*.internal.example' }, headers({ extraRequest: { 'x-internal': '1' } })), rewritePath([[/^\/(small.*)$/, '/$1']])],
    },
    { stages: [] },
  ]);
}

/** The same relay mounted at the root of an Express 5 app with `toConnect`: the connect-adapter's cost. */
async function relayExpress(relay: Awaited<ReturnType<typeof import('@relay/core').createRelay>>): Promise<Started> {
  const { default: express } = await import('express');
  const { toConnect } = await import('@relay/connect-adapter');
  await relay.startup();
  const app = express();
  app.use(toConnect(relay));
  return { server: createServer(app) };
}

/** Relay's Fastify plugin at the root of a fastify 5 app: the same relay as `relay`, behind Fastify's router. */
async function relayFastify(relay: Awaited<ReturnType<typeof import('@relay/core').createRelay>>): Promise<Started> {
  const { default: fastify } = await import('fastify');
  const { relayPlugin } = await import('@relay/frameworks/fastify');
  const app = fastify({ logger: false });
  await app.register(relayPlugin, { relay });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { server: app.server, listening: true };
}

/**
 * The same relay behind a Hono app on @hono/node-server, through its Web-standard entry:
 * `relay.fetch(c.req.raw, { address })` for every method and path, the Web `Response` returned
 * to Hono as it is (bodies streamed both ways as Web streams).
 */
async function relayHonoFetch(relay: Awaited<ReturnType<typeof import('@relay/core').createRelay>>): Promise<Started> {
  const [{ Hono }, { createAdaptorServer }] = await Promise.all([import('hono'), import('@hono/node-server')]);
  await relay.startup();
  const app = new Hono<{ Bindings: { incoming: IncomingMessage } }>();
  app.all('*', function relayFetch(c) {
    return relay.fetch(c.req.raw, { address: c.env.incoming.socket.remoteAddress });
  });
  return { server: createAdaptorServer({ fetch: app.fetch }) as Server };
}

/**
 * Hono's own `proxy()` helper (`hono/proxy`) on @hono/node-server, as its documentation shows it
 * for forwarding a whole request: `raw: c.req.raw` (method, body, signal) and the client's
 * headers plus the forwarding headers Relay adds by default. It fetches with Node's global
 * `fetch` (undici's default pool: keep-alive, no socket limit), its only documented transport.
 */
async function honoProxy(target: URL): Promise<Started> {
  const [{ Hono }, { proxy }, { createAdaptorServer }] = await Promise.all([import('hono'), import('hono/proxy'), import('@hono/node-server')]);
  const app = new Hono<{ Bindings: { incoming: IncomingMessage } }>();
  const origin = target.origin;
  app.all('*', function honoForward(c) {
    const url = c.req.url;
    return proxy(origin + url.slice(url.indexOf('/', url.indexOf('//') + 2)), {
      raw: c.req.raw,
      headers: {
        ...c.req.header(),
        'x-forwarded-for': c.env.incoming.socket.remoteAddress,
        'x-forwarded-host': c.req.header('host'),
        'x-forwarded-proto': 'http',
      },
    });
  });
  return { server: createAdaptorServer({ fetch: app.fetch }) as Server };
}

/**
 * @fastify/http-proxy on fastify 5 at the root, as its README shows it, with reply-from's undici
 * pool sized like the others (the `reply-from` row's settings) and its WebSocket proxy on.
 */
async function fastifyHttpProxy(target: URL, websocket: boolean): Promise<Started> {
  const { default: fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = fastify({ logger: false });
  await app.register(proxy, {
    upstream: target.origin,
    websocket,
    undici: { connections: UPSTREAM_SOCKETS, pipelining: 1, keepAliveTimeout: 60_000 },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { server: app.server, listening: true };
}

/** Builds the named proxy; the caller listens on 127.0.0.1 unless it says it already does. */
export async function startProxy(name: Exclude<ProxyName, 'direct'>, target: URL, websocket: boolean, pool: URL[]): Promise<Started> {
  switch (name) {
    case 'pipe':
      return pipe(target, websocket);
    case 'http-proxy':
      return httpProxy(target, websocket);
    case 'reply-from':
      return replyFrom(target);
    case 'reply-from-balance':
      return replyFrom(target, pool);
    case 'express-http-proxy':
      return expressHttpProxy(target);
    case 'relay':
    case 'relay-got':
    case 'relay-undici':
    case 'relay-h2':
    case 'relay-stages':
    case 'relay-ratelimit':
    case 'relay-balance':
    case 'relay-compress':
    case 'relay-observe':
    case 'relay-observe-als':
    case 'relay-observe-api':
    case 'relay-als':
    case 'relay-ws-hook':
    case 'relay-routing':
    case 'relay-fastify':
    case 'relay-fastify-undici':
    case 'relay-express':
    case 'relay-hono-fetch':
      return relay(name, target, websocket, pool);
    case 'fastify-http-proxy':
      return fastifyHttpProxy(target, websocket);
    case 'express-compress':
      return expressCompress(target);
    case 'relay-gateway':
      return relayGateway(target);
    case 'hono-proxy':
      return honoProxy(target);
    case 'relay-h2-front':
      return relayH2Front(target);
    case 'relay-grpc':
      return relayGrpc(target);
    case 'fastify-http-proxy-h2':
    case 'fastify-http-proxy-grpc':
      return fastifyHttpProxyH2(target, name === 'fastify-http-proxy-grpc');
  }
}
