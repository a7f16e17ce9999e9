// Entry of every child process: `node child.js upstream` or `node child.js <proxy> <target> <ws|http> <pool>`
// (`pool`: the upstream's origins, comma-separated). Reports `{ type: 'ready', port }` (or `{ type: 'skipped', reason }`) over IPC, then answers:
//   begin → starts a measured window (CPU baseline)   end → { cpuMicros, maxRssKb } for the window
//   stop  → exits.
// Nothing in here runs per request: the measurement costs two IPC messages per window.
import type { AddressInfo, Server as NetServer } from 'node:net';
import { startProxy } from './proxies.js';
import type { ProxyName } from './settings.js';
import { POOL_SIZE } from './settings.js';
import { startGrpcUpstream } from './grpc.js';
import { startH2cUpstream, startUpstream } from './upstream.js';

export type ChildMessage =
  | { type: 'ready'; port: number; h2cPort?: number; grpcPort?: number; poolPorts?: number[] }
  | { type: 'skipped'; reason: string }
  | { type: 'begun' }
  | { type: 'usage'; cpuMicros: number; maxRssKb: number }
  | { type: 'failed'; error: string };

export type ParentMessage = { type: 'begin' } | { type: 'end' } | { type: 'stop' };

function send(message: ChildMessage): void {
  process.send!(message);
}

function listen(server: NetServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function main(): Promise<void> {
  // http-proxy 1.18 uses util._extend; its deprecation warning is noise in the output, not a cost.
  process.noDeprecation = true;
  const [role, target, websocket, pool] = process.argv.slice(2);
  let server: NetServer;
  if (role === 'upstream') server = startUpstream();
  else {
    const origins = (pool ?? target!).split(',').map((origin) => new URL(origin));
    const started = await startProxy(role as Exclude<ProxyName, 'direct'>, new URL(target!), websocket === 'ws', origins);
    if ('skipped' in started) {
      send({ type: 'skipped', reason: started.skipped });
      process.disconnect();
      return;
    }
    server = started.server;
    if (started.listening) {
      send({ type: 'ready', port: (server.address() as AddressInfo).port });
      answer();
      return;
    }
  }
  const port = await listen(server);
  if (role === 'upstream') {
    // The upstream also answers over h2c on another port (relay-h2's target), gRPC on another, and
    // on POOL_SIZE - 1 more HTTP ports: with `port`, the pool of the balancing rows.
    const h2cPort = await listen(startH2cUpstream());
    const grpcPort = (await startGrpcUpstream()).port;
    const more = await Promise.all(Array.from({ length: POOL_SIZE - 1 }, () => listen(startUpstream())));
    send({ type: 'ready', port, h2cPort, grpcPort, poolPorts: [port, ...more] });
  } else send({ type: 'ready', port });
  answer();
}

function answer(): void {
  let baseline = process.cpuUsage();
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'begin') {
      baseline = process.cpuUsage();
      send({ type: 'begun' });
    } else if (message.type === 'end') {
      const used = process.cpuUsage(baseline);
      send({ type: 'usage', cpuMicros: used.user + used.system, maxRssKb: process.resourceUsage().maxRSS });
    } else if (message.type === 'stop') process.exit(0);
  });
  // The harness died or stopped: do not outlive it.
  process.on('disconnect', () => process.exit(0));
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
});
