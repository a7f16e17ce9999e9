// Review s36 (issues 6 and 16): what the Autobahn suite does not cover in @relay/ws, seen from a
// user's client: close codes and UTF-8 reasons both ways, subprotocol and permessage-deflate
// (RFC 7692) negotiation end to end (transparent) and per link (terminating). Both modes, real
// `ws` upstreams and clients, raw sockets where a `ws` peer would refuse to misbehave.
import type { IncomingMessage } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, type ClientOptions } from 'ws';
import { memoryLogger, sendRaw } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import {
  closed,
  inbox,
  nextPeer,
  noSocketsLeft,
  refusedHandshake,
  startGateway,
  startRawUpstream,
  startWsUpstream,
  switchingProtocols,
  type WsUpstreamOptions,
} from './helpers.js';

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

/** Opens a client and resolves with it and the 101's headers it got. */
function openWithHead(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<{ ws: WebSocket; head: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    let head: IncomingMessage['headers'] = {};
    ws.on('upgrade', (res) => (head = res.headers));
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      reject(new Error(`unexpected response ${res.statusCode}`));
    });
    ws.on('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      resolve({ ws, head });
    });
  });
}

async function setup(options: WebSocketOptions, upstreamOptions: WsUpstreamOptions = {}) {
  const upstream = await startWsUpstream(upstreamOptions);
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
  /** The Sec-WebSocket-Extensions line each 101 of the upstream carried. */
  const upstreamExtensions: Array<string | undefined> = [];
  upstream.wss.on('headers', (lines: string[]) => {
    const line = lines.find((one) => /^sec-websocket-extensions:/i.test(one));
    upstreamExtensions.push(line?.slice(line.indexOf(':') + 1).trim());
  });
  return { upstream, gateway, upstreamExtensions };
}

// RFC 6455 §7.4.1 / §5.5.1: every code an endpoint may send (1000–1003, 1007–1014, 3000–4999) and
// its UTF-8 reason reach the other side (issue 6: "each side's close code and reason are passed
// to the other"; issue 16: "close-code mapping … keeps working in both modes").
const codes = [1000, 1001, 1003, 1008, 1011, 1012, 1013, 3000, 4000, 4999];
const reason = 'fermé ✓ 部屋 🚀'; // multi-byte UTF-8, 26 bytes
const longReason = '€'.repeat(41); // 123 bytes: the most a close frame holds

for (const [mode, options] of modes) {
  test(`${mode}: every sendable close code with a UTF-8 reason reaches the client from the upstream, and the upstream from the client`, async () => {
    const { upstream, gateway } = await setup(options);
    for (const code of codes) {
      for (const [closer, text] of [['upstream', reason], ['client', longReason]] as const) {
        const peerReady = nextPeer(upstream);
        const { ws: client } = await openWithHead(`${gateway.url}/c${code}`);
        const peer = await peerReady;
        const clientEnd = closed(client);
        const peerEnd = closed(peer);
        if (closer === 'upstream') peer.close(code, text);
        else client.close(code, text);
        const [seenByClient, seenByPeer] = await Promise.all([clientEnd, peerEnd]);
        const far = closer === 'upstream' ? seenByClient : seenByPeer;
        assert.equal(far, { code, reason: text }, `${closer} closed with ${code}: the other side sees that code and reason`);
      }
    }
    assert.ok(await noSocketsLeft(gateway, upstream));
    await gateway.close();
    await upstream.close();
  });

  // RFC 6455 §4.1 (client step 6): a Sec-WebSocket-Protocol the client did not offer fails the
  // connection; the relay checks the upstream's answer as that client would, and refuses (502).
  test(`${mode}: an upstream that names a subprotocol when the client offered none: 502, not a 101 the client must fail`, async () => {
    const upstream = await startRawUpstream((socket, key) => socket.write(switchingProtocols(key).replace('\r\n\r\n', '\r\nSec-WebSocket-Protocol: chat\r\n\r\n')));
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const refusal = await refusedHandshake(`${gateway.url}/x`);
    assert.is(refusal.status, 502);
    await gateway.close();
    await upstream.close();
  });
}

// RFC 7692 §5 and §7.1: the client's offer (with its parameters) reaches the upstream, the
// upstream's response is what the client gets, and both ends then use exactly those parameters
// (issue 16: "extensions negotiated end to end"; docs/websocket.md "How it works" step 3).
const deflateCases: ReadonlyArray<readonly [string, ClientOptions['perMessageDeflate'], WsUpstreamOptions['perMessageDeflate']]> = [
  ['the upstream accepts the offer with its parameters', { clientMaxWindowBits: 10, serverNoContextTakeover: true }, true],
  ['the upstream picks parameters of its own', { clientMaxWindowBits: 12 }, { serverMaxWindowBits: 9, clientNoContextTakeover: true, serverNoContextTakeover: true }],
  ['the upstream declines', { clientMaxWindowBits: 12 }, false],
  ['the client does not offer it', false, true],
];

for (const [name, clientOffer, upstreamDeflate] of deflateCases) {
  test(`transparent: permessage-deflate, ${name}: the client's 101 carries exactly the upstream's answer and messages pass both ways`, async () => {
    const { upstream, gateway, upstreamExtensions } = await setup({}, { perMessageDeflate: upstreamDeflate });
    const offers: Array<string | undefined> = [];
    upstream.server.prependListener('upgrade', (req: IncomingMessage) => offers.push(req.headers['sec-websocket-extensions']));
    const { ws: client, head } = await openWithHead(`${gateway.url}/d`, [], { perMessageDeflate: clientOffer });
    const direct = new WebSocket(upstream.url.replace('http:', 'ws:') + '/d', { perMessageDeflate: clientOffer });
    await new Promise((resolve) => direct.once('open', resolve));
    // The same offer went upstream as the client made (the relay's and the direct client's alike).
    assert.is(offers[0], offers[1], 'the offer reaches the upstream as the client sent it');
    assert.is(head['sec-websocket-extensions'], upstreamExtensions[0], 'the client gets the upstream’s extension answer, as it is');
    assert.is(client.extensions, direct.extensions, 'the client negotiated what it negotiates directly');
    const box = inbox(client);
    const big = Buffer.alloc(200_000, 'compressible text ');
    for (let i = 0; i < 3; i++) {
      client.send(big.toString(), { binary: false });
      const echoed = await box.next();
      assert.is(echoed.data.length, big.length);
      assert.not.ok(echoed.isBinary);
    }
    direct.close();
    client.close(1000);
    await closed(client);
    assert.ok(await noSocketsLeft(gateway, upstream));
    await gateway.close();
    await upstream.close();
  });
}

// Terminating: each link negotiates its own (README: `perMessageDeflate`); the client's 101 never
// carries an answer the relay's own link to the client does not use.
for (const deflate of [false, true]) {
  test(`terminating, perMessageDeflate: ${deflate}: the client's extension answer is the relay's own, and messages pass`, async () => {
    const { upstream, gateway } = await setup({ onClientMessage: () => undefined, perMessageDeflate: deflate }, { perMessageDeflate: true });
    const { ws: client, head } = await openWithHead(`${gateway.url}/t`, [], { perMessageDeflate: { serverNoContextTakeover: true, clientMaxWindowBits: 11 } });
    if (deflate) {
      assert.match(String(head['sec-websocket-extensions']), /^permessage-deflate/);
      assert.match(String(head['sec-websocket-extensions']), /server_no_context_takeover/);
    } else {
      assert.is(head['sec-websocket-extensions'], undefined, 'no extension answer when the relay does not compress');
    }
    assert.is(String(head['sec-websocket-extensions']).split('permessage-deflate').length <= 2, true, 'one answer, never the upstream’s beside the relay’s');
    const box = inbox(client);
    client.send(Buffer.alloc(100_000, 7));
    assert.is((await box.next()).data.length, 100_000);
    client.close();
    await closed(client);
    assert.ok(await noSocketsLeft(gateway, upstream));
    await gateway.close();
    await upstream.close();
  });
}

// RFC 7692 §5.1 / §7: the server answers one of the client's offers; an answer naming an extension
// the client did not offer is a failed handshake (RFC 6455 §4.1 step 5). Hostile raw upstream.
for (const [mode, options] of modes) {
  test(`${mode}: an upstream answering permessage-deflate to a client that offered no extension: 502`, async () => {
    const upstream = await startRawUpstream((socket, key) =>
      socket.write(switchingProtocols(key).replace('\r\n\r\n', '\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n')),
    );
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const raw = await sendRaw(
      gateway.port,
      'GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      1_000,
    );
    const head = raw.split('\r\n\r\n')[0]!.toLowerCase();
    if (mode === 'transparent') assert.match(head, /^http\/1\.1 502/);
    // Terminating: the relay's own link to the upstream offered nothing either; either way no extension reaches the client.
    assert.not.match(head, /sec-websocket-extensions/);
    await gateway.close();
    await upstream.close();
  });
}

test.run();
