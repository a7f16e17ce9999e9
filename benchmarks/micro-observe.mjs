// Micro-benchmark of @relay/observe's stages around a transport that answers at once (no sockets):
// CPU µs per request of observe({ accessLog, metrics, tracing }) over the bare handler, as the
// relay-observe bench row sets them up (SDK, BatchSpanProcessor, dropping exporter, W3C propagation).
// `node benchmarks/micro-observe.mjs [parts]` after `node scripts/build.mjs observe`; parts as
// OBS_PARTS (default log,metrics,tracing; `als` adds the AsyncLocalStorage context manager, switched
// on as relay-observe-als has it). OBS_NOOP=1 leaves the SDK out (relay-observe-api): Relay's share.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
const require = createRequire(new URL('./package.json', import.meta.url));
const { observe } = await import(new URL('../packages/observe/dist/index.js', import.meta.url));
const { Registry } = require('prom-client');
const api = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const sdk = require('@opentelemetry/sdk-trace-base');

const parts = (process.argv[2] ?? 'log,metrics,tracing').split(',');
if (parts.includes('als')) {
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.context.with(api.context.active(), () => {}); // what the batch processor's first export does
}
api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const dropSpans = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
const tracerProvider = process.env.OBS_NOOP ? new api.ProxyTracerProvider() : new sdk.BasicTracerProvider({ spanProcessors: [new sdk.BatchSpanProcessor(dropSpans)] });
const obs = observe({
  accessLog: parts.includes('log') && { stream: { write: (line) => line.length } },
  metrics: parts.includes('metrics') && { registry: new Registry() },
  tracing: parts.includes('tracing') && { tracerProvider, attemptContext: process.env.ATTEMPT_CONTEXT ?? 'auto' },
});
const target = { protocol: 'http:', hostname: '127.0.0.1', port: 8000, host: '127.0.0.1:8000', origin: 'http://127.0.0.1:8000', basePath: '' };
const context = { logger: { debug() {}, info() {}, warn() {}, error() {} }, target, timeouts: {} };

class Body extends EventEmitter {
  readableEnded = false;
}
function transport(request) {
  const body = new Body();
  return Promise.resolve({ status: 200, statusMessage: 'OK', headers: { 'content-type': 'application/json' }, body });
}
function finishBody(response) {
  response.body.emit('data', Buffer.alloc(50));
  response.body.readableEnded = true;
  response.body.emit('close');
}
const observed = obs.request.wrap(obs.attempt.wrap(transport, context), context);
function makeRequest() {
  const client = { address: '127.0.0.1', clientAddress: '127.0.0.1', scheme: 'http', originalUrl: '/small?page=1', abortReason: null, incoming: undefined };
  const headers = { host: '127.0.0.1:8000', connection: 'keep-alive', 'user-agent': 'bench' };
  return { method: 'GET', path: '/small?page=1', headers, body: null, replayBody: null, attempt: 0, client };
}
async function round(handler, count) {
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const response = await handler(makeRequest());
    finishBody(response);
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}
// OBS_ALLOC=1: bytes allocated per request instead of CPU (V8's sampling heap profiler, objects a
// collection freed included), with the functions that allocate most: on this VM a request's extra
// memory traffic costs more time than its instructions say.
if (process.env.OBS_ALLOC) await allocations();
async function allocations() {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  for (let i = 0; i < 5; i++) await round(observed, 20000);
  const sample = async (handler, count) => {
    await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    await round(handler, count);
    return (await session.post('HeapProfiler.stopSampling')).profile;
  };
  const count = 20000;
  const bare = await sample(transport, count);
  const full = await sample(observed, count);
  const bytes = (profile) => profile.samples.reduce((sum, s) => sum + s.size, 0) / count;
  console.log(`bytes per request: bare ${bytes(bare).toFixed(0)}, observed ${bytes(full).toFixed(0)}`);
  const self = new Map();
  const walk = (node) => {
    const frame = node.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\//, '').replace(/^.*packages\//, '')}:${frame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(full.head);
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.OBS_ALLOC_TOP ?? 25));
  for (const [key, size] of top) console.log(`${(size / count).toFixed(0).padStart(6)} B  ${key}`);
  process.exit(0);
}
const count = 20000;
const bare = [], full = [];
for (let r = 0; r < 12; r++) {
  bare.push(await round(transport, count));
  full.push(await round(observed, count));
}
const min = (list) => Math.min(...list.slice(2));
const median = (list) => list.slice(2).sort((a, b) => a - b)[Math.floor((list.length - 2) / 2)];
console.log(`parts ${parts.join(',')}: bare ${min(bare).toFixed(2)} µs, observed ${min(full).toFixed(2)} µs (min), +${(min(full) - min(bare)).toFixed(2)} µs; medians +${(median(full) - median(bare)).toFixed(2)} µs`);
await tracerProvider.shutdown?.();
