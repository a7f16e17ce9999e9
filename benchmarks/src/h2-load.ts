// The HTTP/2 load generators: `h2-small-get` (an h2c client, every stream on one connection, as
// a browser or a gRPC channel does it) and `grpc-unary` (a real @grpc/grpc-js client). Run in the
// harness process like the others; `connections` is the number of requests in flight.
import { connect, type ClientHttp2Session } from 'node:http2';
import { grpcCall, grpcClient } from './grpc.js';
import { REQUEST_TIMEOUT_S, SMALL_BODY } from './settings.js';
import type { LoadResult } from './load.js';

/**
 * Keeps `inFlight` calls of `once` going until `seconds` have passed (no call starts later; the
 * window ends with the last one) and times each. `once` resolves with whether the answer was right.
 */
async function loop(seconds: number, inFlight: number, once: () => Promise<boolean>): Promise<LoadResult> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const sentAt = performance.now();
      if (await once()) latencies.push(performance.now() - sentAt);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const at = (fraction: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!);
  return { completed: sorted.length, rate: sorted.length / elapsed, p50: at(0.5), p99: at(0.99), errors };
}

/** `GET /small?page=1` on `session`: status 200 and the exact body. */
function smallGet(session: ClientHttp2Session): Promise<boolean> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': '/small?page=1' });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.setTimeout(REQUEST_TIMEOUT_S * 1000, () => stream.close());
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve(status === 200 && body === SMALL_BODY));
    stream.on('error', () => resolve(false));
  });
}

function h2cSession(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** `connections` streams in flight on one h2c connection to `port`. */
export async function h2Load(port: number, seconds: number, connections: number): Promise<LoadResult> {
  const session = await h2cSession(port);
  session.on('error', () => {});
  try {
    return await loop(seconds, connections, () => smallGet(session));
  } finally {
    session.close();
  }
}

/** `connections` unary calls in flight on one gRPC channel to `port`. */
export async function grpcLoad(port: number, seconds: number, connections: number): Promise<LoadResult> {
  const client = await grpcClient(port);
  try {
    return await loop(seconds, connections, () => grpcCall(client));
  } finally {
    client.close();
  }
}

/** One checked request before the load: `null` when right, else what was wrong. */
export async function verifyH2(port: number, grpc: boolean): Promise<string | null> {
  if (grpc) {
    const client = await grpcClient(port);
    const ok = await grpcCall(client);
    client.close();
    return ok ? null : 'the unary call failed or its echo differed';
  }
  const session = await h2cSession(port).catch(() => null);
  if (session === null) return 'no h2c connection';
  const ok = await smallGet(session);
  session.close();
  return ok ? null : 'status or body differed';
}
