// The demo gateway: one public node:http server that relays /api/** to a private upstream
// service. Without UPSTREAM_URL it starts an embedded upstream of its own on 127.0.0.1.
//
//   PORT=8080 UPSTREAM_URL=http://127.0.0.1:9000 pnpm demo
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRelay, gatewayServerOptions, type Logger } from '@relay/core';

const logger: Logger = {
  debug: () => {},
  info: (fields, message) => console.log(`[relay] ${message}`, JSON.stringify(fields)),
  warn: (fields, message) => console.warn(`[relay] ${message}`, JSON.stringify(fields)),
  error: (fields, message) => console.error(`[relay] ${message}`, JSON.stringify(fields)),
};

/** A small private service: what the gateway hides. */
function upstreamService(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://upstream');
  if (url.pathname === '/v1/hello') {
    const body = JSON.stringify({
      message: `Hello, ${url.searchParams.get('name') ?? 'world'}, from the private upstream`,
      path: req.url,
      forwardedFor: req.headers['x-forwarded-for'],
      forwardedHost: req.headers['x-forwarded-host'],
      forwardedPrefix: req.headers['x-forwarded-prefix'],
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    return;
  }
  if (url.pathname === '/v1/echo' && req.method === 'POST') {
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
    req.pipe(res);
    return;
  }
  if (url.pathname === '/v1/events') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).flushHeaders();
    let n = 0;
    const timer = setInterval(() => {
      res.write(`data: tick ${++n}\n\n`);
      if (n === 5) {
        clearInterval(timer);
        res.end();
      }
    }, 500);
    res.on('close', () => clearInterval(timer));
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end(`upstream has no ${url.pathname}\n`);
}

async function listen(server: ReturnType<typeof createServer>, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return (server.address() as AddressInfo).port;
}

const embedded = process.env.UPSTREAM_URL ? null : createServer(upstreamService);
const upstreamUrl = process.env.UPSTREAM_URL ?? `http://127.0.0.1:${await listen(embedded!, 0)}`;

const api = createRelay({
  targetBaseUrl: upstreamUrl,
  mountPath: '/api',
  upstreamPrefix: process.env.UPSTREAM_URL ? '/' : '/v1',
  timeout: { connect: 2_000, read: 10_000 },
  logger,
});
await api.startup();

const gateway = createServer({ ...gatewayServerOptions }, (req, res) => {
  if (req.url === '/' || req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Relay demo gateway: try /api/hello\n');
    return;
  }
  api.handle(req, res);
});
const port = await listen(gateway, Number(process.env.PORT ?? 8080));
const base = `http://127.0.0.1:${port}`;

console.log(`Relay demo gateway on ${base}, relaying /api/** to ${embedded ? `an embedded upstream (${upstreamUrl}/v1)` : upstreamUrl}`);
console.log('Try:');
console.log(`  curl -i ${base}/api/hello?name=relay`);
console.log(`  curl -i -X POST -H 'content-type: text/plain' --data 'ping' ${base}/api/echo`);
console.log(`  curl -N ${base}/api/events`);
console.log(`  curl -i --path-as-is ${base}/api/../secret      (400: never leaves the prefix)`);
console.log('Ctrl-C stops it.');

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping: draining in-flight requests');
  gateway.close();
  await api.shutdown({ timeout: 5_000 });
  gateway.closeAllConnections();
  embedded?.close();
  embedded?.closeAllConnections();
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
