// Entry of every child process: `node child.js upstream` or `node child.js <proxy> <target> <ws|http> <pool>`
// (`pool`: the upstream's origins, comma-separated). Reports `{ type: 'ready', port }` (or `{ type: 'skipped', reason }`) over IPC, then answers:
//   begin → starts a measured window (CPU baseline)   end → { cpuMicros, maxRssKb } for the window
//   stop  → exits.
// Nothing in here runs per request: the measurement costs two IPC messages per window.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
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
  | { type: 'usage'; cpuMicros: number; maxRssKb: number; allocatedBytes?: number }
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
  const sampler = process.env.RELAY_BENCH_ALLOC ? allocationSampler(process.env.RELAY_BENCH_ALLOC) : null;
  process.on('message', async (message: ParentMessage) => {
    if (message.type === 'begin') {
      await sampler?.start();
      baseline = process.cpuUsage();
      send({ type: 'begun' });
    } else if (message.type === 'end') {
      const used = process.cpuUsage(baseline);
      const allocatedBytes = await sampler?.stop();
      send({ type: 'usage', cpuMicros: used.user + used.system, maxRssKb: process.resourceUsage().maxRSS, allocatedBytes });
    } else if (message.type === 'stop') process.exit(0);
  });
  // The harness died or stopped: do not outlive it.
  process.on('disconnect', () => process.exit(0));
}

/**
 * RELAY_BENCH_ALLOC=FILE: V8's sampling heap profiler over each window, objects the collector freed
 * included (every allocation, not what survives), for `node benchmarks/pair.mjs`'s bytes per
 * request; FILE.<pid>.json gets the window's bytes by allocating function. It costs CPU itself:
 * a window with it measures allocation, not time.
 */
function allocationSampler(file: string): { start(): Promise<void>; stop(): Promise<number> } {
  const session = new Session();
  session.connect();
  return {
    async start() {
      await session.post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    },
    async stop() {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      const byFunction = new Map<string, number>();
      const walk = (node: HeapNode): void => {
        const { functionName, url, lineNumber } = node.callFrame;
        const key = `${functionName || '(anonymous)'} ${url.replace(/^.*(node_modules|packages)\//, '')}:${lineNumber + 1}`;
        byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
        node.children.forEach(walk);
      };
      walk(profile.head as HeapNode);
      writeFileSync(`${file}.${process.pid}.json`, JSON.stringify([...byFunction].sort((a, b) => b[1] - a[1])));
      // `samples` (each allocation sampled) is newer than @types/node's protocol types.
      return (profile as unknown as { samples: { size: number }[] }).samples.reduce((sum, sample) => sum + sample.size, 0);
    },
  };
}
interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
});
