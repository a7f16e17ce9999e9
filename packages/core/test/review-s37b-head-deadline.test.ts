// Review s37b (core, timeout.read as a head deadline, commit 790a15c): black box, real sockets.
// Reviewed what users rely on once `read` bounds the wait for the final head from the request's
// end: a long poll whose head comes late but within `read`, a streamed upload slower than `read`
// (with and without `Expect: 100-continue`, the upstream answering 100 then reading slowly), an
// event stream's head, an endless 1xx stream on http2Transport, and the deadline after a
// stale-connection resend; on httpTransport, gotTransport, undiciTransport and http2Transport.
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, listen, listenHttp2, serveRelay, waitFor } from '@relay/testkit';
import { createRelay, http2Transport, httpTransport, type RelayOptions, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const h1Transports: Array<[string, () => Transport]> = [
  ['httpTransport', () => httpTransport()],
  ['gotTransport', () => gotTransport()],
  ['undiciTransport', () => undiciTransport()],
];

interface H1Upstream {
  url: string;
  server: Server;
  close(): Promise<void>;
}

async function h1Upstream(handler: Handler, onServer?: (server: Server) => void): Promise<H1Upstream> {
  const server = createHttpServer(handler);
  onServer?.(server);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const url = await listen(server);
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reads the whole upload, then answers `after` ms later with the byte count. */
function countThenAnswer(after: number): Handler {
  return (req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('error', () => {});
    req.on('end', () => setTimeout(() => res.end(`got ${bytes}`), after));
  };
}

interface Result {
  status: number;
  body: string;
  ms: number;
}

/** A POST whose body goes in `chunks` pieces of `size` bytes, one every `every` ms; with `expect`, only after 100. */
function slowUpload(url: string, chunks: number, size: number, every: number, expect = false): Promise<Result> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(chunks * size) };
    if (expect) headers.expect = '100-continue';
    const req = httpRequest(`${url}/upload`, { method: 'POST', headers, agent: false });
    const send = () => {
      let sent = 0;
      const timer = setInterval(() => {
        req.write(Buffer.alloc(size, 'u'));
        if (++sent === chunks) {
          clearInterval(timer);
          req.end();
        }
      }, every);
      req.once('close', () => clearInterval(timer));
    };
    if (expect) req.once('continue', send);
    else send();
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, ms: Date.now() - started }));
      res.on('error', reject);
    });
  });
}

function get(url: string, timeoutMs = 8000): Promise<Result | 'hung'> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      resolve('hung');
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode!, body, ms: Date.now() - started });
      });
    });
    req.end();
  });
}

async function front(options: RelayOptions, expectEndToEnd = false) {
  const relay = createRelay(options);
  const served = await serveRelay(relay);
  if (expectEndToEnd) served.server.on('checkContinue', relay.handle);
  return served;
}

for (const [name, transport] of h1Transports) {
  test(`${name}: a streamed upload that lasts longer than timeout.read (but never stalls for timeout.write) is not cut; the head comes 300 ms after the upload's end: 200`, async () => {
    // README "Timeouts": read is counted "from the end of the request"; write is "the longest
    // stall while sending the request body". An upload of 2.4 s with read 1000 must go through.
    const upstream = await h1Upstream(countThenAnswer(300));
    const served = await front({ targetBaseUrl: upstream.url, transport: transport(), timeout: { read: 1000, write: 3000 } });
    try {
      const answer = await slowUpload(served.url, 8, 1000, 300);
      assert.is(answer.status, 200, `status ${answer.status}: ${answer.body}`);
      assert.is(answer.body, 'got 8000');
      assert.ok(await waitFor(() => served.relay.inFlight === 0, 2000), `inFlight ${served.relay.inFlight}`);
    } finally {
      await served.close();
      await upstream.close();
    }
  });

  test(`${name}: Expect: 100-continue end to end, the upstream sends 100 then reads a 2.4 s upload (read 1000): 200, the deadline counts from the upload's end`, async () => {
    // RFC 9110 §10.1.1; the commit: "the deadline counts from the request's end". A large
    // upload behind 100-continue (curl -T, S3 clients) must not be cut by the head deadline.
    const upstream = await h1Upstream(countThenAnswer(200), (server) =>
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
        res.writeContinue();
        countThenAnswer(200)(req, res);
      }),
    );
    const served = await front({ targetBaseUrl: upstream.url, transport: transport(), timeout: { read: 1000, write: 3000 } }, true);
    try {
      const answer = await Promise.race([slowUpload(served.url, 8, 1000, 300, true), delay(9000).then(() => 'hung' as const)]);
      assert.ok(answer !== 'hung', 'no answer in 9 s');
      assert.is(answer.status, 200, `status ${answer.status}: ${answer.body}`);
      assert.is(answer.body, 'got 8000');
      assert.ok(await waitFor(() => served.relay.inFlight === 0, 2000), `inFlight ${served.relay.inFlight}`);
    } finally {
      await served.close();
      await upstream.close();
    }
  });

  test(`${name}: a long poll whose head comes 1.5 s after the request with read 2500 is answered 200; with read 800 it is a 504 in about 800 ms`, async () => {
    const upstream = await h1Upstream((_req, res) => {
      setTimeout(() => {
        if (!res.destroyed) res.end('event');
      }, 1500);
    });
    const patient = await front({ targetBaseUrl: upstream.url, transport: transport(), timeout: { read: 2500 } });
    const hasty = await front({ targetBaseUrl: upstream.url, transport: transport(), timeout: { read: 800 } });
    try {
      const ok = await get(`${patient.url}/poll`);
      assert.ok(ok !== 'hung');
      assert.is(ok.status, 200);
      assert.is(ok.body, 'event');
      const cut = await get(`${hasty.url}/poll`);
      assert.ok(cut !== 'hung');
      assert.is(cut.status, 504);
      assert.ok(cut.ms < 1400, `504 after ${cut.ms} ms`);
      assert.ok(await waitFor(() => patient.relay.inFlight === 0 && hasty.relay.inFlight === 0, 2000));
    } finally {
      await patient.close();
      await hasty.close();
      await upstream.close();
    }
  });

  test(`${name}: an event stream (text/event-stream) whose head comes within read and then stays quiet 1.5 s past read is not cut`, async () => {
    // docs/retries.md "Event streams are not cut for being quiet".
    const upstream = await h1Upstream((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: one\n\n');
        setTimeout(() => res.end('data: two\n\n'), 1500);
      }, 400);
    });
    const served = await front({ targetBaseUrl: upstream.url, transport: transport(), timeout: { read: 700 } });
    try {
      const answer = await get(`${served.url}/events`);
      assert.ok(answer !== 'hung');
      assert.is(answer.status, 200);
      assert.is(answer.body, 'data: one\n\ndata: two\n\n');
    } finally {
      await served.close();
      await upstream.close();
    }
  });
}

test('http2Transport: an upstream that sends "102 Processing" every 100 ms and never a final head is ended (504) after about timeout.read, as the HTTP/1.1 transports now do', async () => {
  // README "Timeouts" (every transport): read "bounds the wait for the final response head,
  // counted from the end of the request (a head that trickles in, or a run of 1xx, does not
  // extend it)". The relay swallows 102, so the client would wait with no byte for good.
  const timers = new Set<NodeJS.Timeout>();
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.on('error', () => {});
    const timer = setInterval(() => {
      if (stream.destroyed || stream.closed) clearInterval(timer);
      else stream.additionalHeaders({ ':status': 102 });
    }, 100);
    timers.add(timer);
  });
  const upstream = await listenHttp2(h2);
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: http2Transport(), timeout: { read: 800 } }));
  try {
    const answer = await get(`${served.url}/processing`, 6000);
    assert.ok(answer !== 'hung', 'the client got nothing in 6 s (timeout.read is 800 ms)');
    assert.ok(answer.status === 504, `status ${answer.status}`);
    assert.ok(await waitFor(() => served.relay.inFlight === 0, 2000));
  } finally {
    for (const timer of timers) clearInterval(timer);
    await served.close();
    await upstream.close();
  }
});

test('http2Transport: a streamed upload longer than timeout.read, answered 300 ms after its end, is 200', async () => {
  const h2 = http2.createServer((req, res) => countThenAnswer(300)(req as unknown as IncomingMessage, res as unknown as ServerResponse));
  const upstream = await listenHttp2(h2);
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: http2Transport(), timeout: { read: 1000, write: 3000 } }));
  try {
    const answer = await slowUpload(served.url, 8, 1000, 300);
    assert.is(answer.status, 200, `status ${answer.status}: ${answer.body}`);
    assert.is(answer.body, 'got 8000');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('httpTransport: a stale keep-alive connection resent on a fresh one gets its full read deadline again: a head 600 ms after the resend (read 1000) is 200', async () => {
  // The commit clears the deadline on resend; the fresh attempt's wait starts at its own end.
  let count = 0;
  const upstream = await h1Upstream((req, res) => {
    count++;
    if (count === 2) {
      // The pooled connection is closed as the second request arrives: nothing processed.
      req.socket.destroy();
      return;
    }
    setTimeout(() => res.end(`answer ${count}`), count === 1 ? 0 : 600);
  });
  const served = await front({ targetBaseUrl: upstream.url, timeout: { read: 1000 } });
  try {
    const first = await get(`${served.url}/one`);
    assert.ok(first !== 'hung' && first.status === 200);
    const second = await get(`${served.url}/two`);
    assert.ok(second !== 'hung');
    assert.is(second.status, 200, `status ${second.status}: ${second.body}`);
    assert.is(count, 3);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
