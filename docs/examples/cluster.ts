// docs/scaling.md: one gateway process per core with node:cluster. The primary only forks and
// supervises; each worker owns its relay, its keep-alive agent and its WebSocket sessions.
// cluster.test.ts runs it with two workers:
//   WORKERS=2 PORT=0 UPSTREAM_URL=http://127.0.0.1:9000 node --conditions=source --import ./scripts/register.mjs docs/examples/cluster.ts
import cluster from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { createRelay, gatewayServerOptions } from '@relay/core';
import { relayLifecycle } from '@relay/connect-adapter';
import { websocket } from '@relay/ws';

const workers = Number(process.env.WORKERS ?? availableParallelism());
const port = Number(process.env.PORT ?? 8080);
const upstream = process.env.UPSTREAM_URL ?? 'http://api:8000';

if (cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === workers) console.log(`gateway on http://127.0.0.1:${address.port} with ${workers} workers`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`worker ${worker.process.pid} died (${signal ?? code}): starting another`);
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop); // Ctrl-C reaches the workers too; each stops once
} else {
  const relay = createRelay({ targetBaseUrl: upstream, mountPath: '/api', websocket: websocket() });
  const relays = relayLifecycle([relay]);
  await relays.startup(); // this worker's keep-alive agent

  const server = http.createServer({ ...gatewayServerOptions }, (req, res) => {
    if (req.url === '/healthz') res.end(`ok from worker ${process.pid}\n`);
    else relay.handle(req, res);
  });
  server.on('upgrade', relay.upgrade); // sessions live in the worker that accepted them
  server.listen(port, () => console.log(`worker ${process.pid} on port ${(server.address() as AddressInfo).port}`));

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await relays.close(server, { timeout: 10_000 }); // drain requests, close sessions with 1001
    cluster.worker?.disconnect();                     // then leave: the process exits
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
