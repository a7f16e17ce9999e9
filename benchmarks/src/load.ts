// The load generators, run in the harness process (never in a proxy's): autocannon for HTTP,
// a ping-pong client on `ws` for WebSocket, and one checked request before any load.
import autocannon from 'autocannon';
import { Agent, request } from 'node:http';
import { WebSocket } from 'ws';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  DOWNLOAD_SIZE,
  JSON_ACCEPT_ENCODING,
  JSON_SIZE,
  PIPELINING,
  POST_SIZE,
  REQUEST_TIMEOUT_S,
  SMALL_BODY,
  WS_LARGE_MESSAGE_SIZE,
  WS_MESSAGE_SIZE,
  asciiPattern,
  isHttp2,
  isWebSocket,
  jsonDocument,
  type Workload,
} from './settings.js';
import { downloadChunk } from './upstream.js';
import { grpcLoad, h2Load, verifyH2 } from './h2-load.js';

const postBody = asciiPattern(POST_SIZE);
const postString = postBody.toString('latin1');

/** What one window measured on the load generator's side. */
export interface LoadResult {
  /** Completed responses (or echoed messages). */
  completed: number;
  /** Per second over the window. */
  rate: number;
  p50: number;
  p99: number;
  /** Connection errors, timeouts, non-2xx statuses and wrong bodies. */
  errors: number;
}

/** Runs autocannon against `port` for `seconds` (the download: see `downloadLoad`); every response's status and body are checked. */
export async function httpLoad(port: number, workload: Workload, seconds: number, connections: number): Promise<LoadResult> {
  const options: autocannon.Options = {
    url: `http://127.0.0.1:${port}${workload.path}`,
    connections,
    pipelining: PIPELINING,
    duration: seconds,
    timeout: REQUEST_TIMEOUT_S,
    method: workload.method,
  };
  if (workload.name === 'download-10m') return downloadLoad(port, workload, seconds, connections);
  if (workload.name === 'h2-small-get') return h2Load(port, seconds, connections);
  if (workload.name === 'grpc-unary') return grpcLoad(port, seconds, connections);
  // RELAY_BENCH_RATE=N offers every proxy the same N requests/s (autocannon's overallRate), so CPU per
  // request compares the same work at the same throughput: a slower proxy run flat out also pays for
  // emptier event-loop turns (fewer requests per wake-up), which inflates its CPU per request.
  const rate = Number(process.env.RELAY_BENCH_RATE ?? 0);
  if (rate > 0) options.overallRate = rate;
  if (workload.name === 'small-get') options.verifyBody = (body) => body === SMALL_BODY;
  else if (workload.name === 'json-64k') {
    options.headers = { 'accept-encoding': JSON_ACCEPT_ENCODING };
    // autocannon hands over the body as text, which garbles compressed bytes: check it was compressed
    // (a fraction of the JSON's size); `verify` decodes one response in full before the load.
    options.verifyBody = (body) => body !== undefined && body.length > 0 && body.length < JSON_SIZE / 3;
  } else {
    options.body = postBody;
    options.headers = { 'content-type': 'application/octet-stream' };
    options.verifyBody = (body) => body === postString;
  }
  const result = await autocannon(options);
  return {
    completed: result.requests.total,
    rate: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.mismatches,
  };
}

/**
 * The 10 MiB download: `connections` keep-alive connections, one request in flight on each, bodies
 * consumed as streams and counted. autocannon is not used here because it collects every body into
 * a string, which on 10 MiB bodies makes the load generator the bottleneck (about 140 MB/s against
 * 800 MB/s for this client on the same machine). No request starts after `seconds`; the window
 * ends when the last one finishes, so the proxy's CPU covers exactly the requests counted.
 */
export async function downloadLoad(port: number, workload: Workload, seconds: number, connections: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let latencies = new Float64Array(1024);
  let completed = 0;
  let errors = 0;
  const record = (latency: number) => {
    if (completed === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[completed++] = latency;
  };
  const worker = () =>
    new Promise<void>((resolve) => {
      const next = () => {
        if (performance.now() >= deadline) return resolve();
        const sentAt = performance.now();
        const req = request({ host: '127.0.0.1', port, path: workload.path, method: workload.method, agent }, (res) => {
          let received = 0;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
          });
          res.on('end', () => {
            if (res.statusCode === 200 && received === DOWNLOAD_SIZE) record(performance.now() - sentAt);
            else errors++;
            next();
          });
          res.on('error', () => {
            errors++;
            next();
          });
        });
        req.setTimeout(REQUEST_TIMEOUT_S * 1000, () => req.destroy(new Error('timed out')));
        req.on('error', () => {
          errors++;
          next();
        });
        req.end();
      };
      next();
    });
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
  const elapsed = (performance.now() - started) / 1000;
  const sorted = latencies.subarray(0, completed).sort();
  return { completed, rate: completed / elapsed, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), errors };
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

/** Opens `connections` WebSocket connections to `port` (through the proxy, or direct). */
export async function openSockets(port: number, workload: Workload, connections: number): Promise<WebSocket[]> {
  return Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}${workload.path}`, { perMessageDeflate: false });
          socket.once('open', () => resolve(socket));
          socket.once('error', reject);
          socket.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket handshake answered ${res.statusCode}`)));
        }),
    ),
  );
}

/** The 1 MiB binary message of `ws-echo-1m`; its first bytes are replaced by a per-message tag. */
const largeMessage = asciiPattern(WS_LARGE_MESSAGE_SIZE);

/**
 * Each socket sends a message (`ws-echo`: a WS_MESSAGE_SIZE-byte text message; `ws-echo-1m`: a
 * 1 MiB binary one), waits for its echo (checked byte for byte), and sends the next, for
 * `seconds`. Latency is per round trip.
 */
export async function wsLoad(sockets: WebSocket[], seconds: number, workload: Workload): Promise<LoadResult> {
  if (workload.name === 'ws-echo-1m') return wsLargeLoad(sockets, seconds);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let latencies = new Float64Array(1 << 16);
  let completed = 0;
  let errors = 0;
  const pad = 'x'.repeat(WS_MESSAGE_SIZE);
  await Promise.all(
    sockets.map(
      (socket, index) =>
        new Promise<void>((resolve) => {
          let sentAt = 0;
          let counter = 0;
          let expected = '';
          const sendNext = () => {
            if (performance.now() >= deadline || socket.readyState !== WebSocket.OPEN) {
              socket.off('message', onMessage);
              socket.off('close', onClose);
              resolve();
              return;
            }
            expected = `${index}:${counter++}:${pad}`.slice(0, WS_MESSAGE_SIZE);
            sentAt = performance.now();
            socket.send(expected);
          };
          const onMessage = (data: Buffer, isBinary: boolean) => {
            const latency = performance.now() - sentAt;
            if (isBinary || data.toString() !== expected) errors++;
            else {
              if (completed === latencies.length) {
                const grown = new Float64Array(latencies.length * 2);
                grown.set(latencies);
                latencies = grown;
              }
              latencies[completed++] = latency;
            }
            sendNext();
          };
          const onClose = () => {
            errors++;
            resolve();
          };
          socket.on('message', onMessage);
          socket.once('close', onClose);
          sendNext();
        }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  const sorted = latencies.subarray(0, completed).sort();
  return { completed, rate: completed / elapsed, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), errors };
}

/** `ws-echo-1m`: one 1 MiB binary message in flight per socket, each echo compared in full. */
async function wsLargeLoad(sockets: WebSocket[], seconds: number): Promise<LoadResult> {
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  const latencies: number[] = [];
  let errors = 0;
  await Promise.all(
    sockets.map(
      (socket, index) =>
        new Promise<void>((resolve) => {
          let sentAt = 0;
          let counter = 0;
          const message = Buffer.from(largeMessage);
          const sendNext = () => {
            if (performance.now() >= deadline || socket.readyState !== WebSocket.OPEN) {
              socket.off('message', onMessage);
              socket.off('close', onClose);
              resolve();
              return;
            }
            message.write(`${index}:${counter++}:`, 0, 'latin1');
            sentAt = performance.now();
            socket.send(message, { binary: true });
          };
          const onMessage = (data: Buffer, isBinary: boolean) => {
            const latency = performance.now() - sentAt;
            if (!isBinary || !message.equals(data)) errors++;
            else latencies.push(latency);
            sendNext();
          };
          const onClose = () => {
            errors++;
            resolve();
          };
          socket.on('message', onMessage);
          socket.once('close', onClose);
          sendNext();
        }),
    ),
  );
  const elapsed = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return { completed: latencies.length, rate: latencies.length / elapsed, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), errors };
}

export async function closeSockets(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.readyState === WebSocket.CLOSED) return resolve();
          socket.once('close', () => resolve());
          socket.close(1000);
          setTimeout(() => {
            socket.terminate();
            resolve();
          }, 2_000).unref();
        }),
    ),
  );
}

/**
 * One request (or one echoed message) checked in full before any load: status 200 and every
 * body byte. Resolves with a problem description, or null when the proxy answers right.
 */
export async function verify(port: number, workload: Workload): Promise<string | null> {
  if (isHttp2(workload)) return verifyH2(port, workload.name === 'grpc-unary');
  if (isWebSocket(workload)) {
    try {
      const [socket] = await openSockets(port, workload, 1);
      const result = await wsLoad([socket!], 0.05, workload);
      await closeSockets([socket!]);
      return result.errors === 0 && result.completed > 0 ? null : 'WebSocket echo came back wrong';
    } catch (error) {
      return `WebSocket: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: workload.path, method: workload.method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (error) => resolve(error.message));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if (res.statusCode !== 200) return resolve(`status ${res.statusCode}`);
        let expected: Buffer;
        if (workload.name === 'small-get') expected = Buffer.from(SMALL_BODY);
        else if (workload.name === 'json-64k') return resolve(checkCompressedJson(res.headers['content-encoding'], body));
        else if (workload.name === 'post-64k') expected = postBody;
        else {
          if (body.length !== DOWNLOAD_SIZE) return resolve(`download of ${body.length} bytes`);
          const chunk = downloadChunk();
          for (let offset = 0; offset < body.length; offset += chunk.length) {
            if (!body.subarray(offset, offset + chunk.length).equals(chunk)) return resolve(`download differs at byte ${offset}`);
          }
          return resolve(null);
        }
        resolve(body.equals(expected) ? null : `body of ${body.length} bytes differs from the ${expected.length} expected`);
      });
    });
    req.on('error', (error) => resolve(error.message));
    if (workload.name === 'json-64k') req.setHeader('accept-encoding', JSON_ACCEPT_ENCODING);
    if (workload.method === 'POST') {
      req.setHeader('content-type', 'application/octet-stream');
      req.end(postBody);
    } else req.end();
  });
}

/** The json-64k answer: br (both peers prefer it for a browser's Accept-Encoding) decoding to the upstream's JSON. */
function checkCompressedJson(coding: string | undefined, body: Buffer): string | null {
  if (coding !== 'br' && coding !== 'gzip') return `Content-Encoding ${String(coding)}, expected br`;
  const decoded = coding === 'br' ? brotliDecompressSync(body) : gunzipSync(body);
  if (!decoded.equals(jsonDocument(JSON_SIZE))) return `decoded body of ${decoded.length} bytes differs from the JSON`;
  return coding === 'br' ? null : 'gzip chosen where br was expected';
}
