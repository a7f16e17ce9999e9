// Review s39 (@relay/ws, issues 6 and 16): RFC 7692 §7.1.2 — a client MUST fail the connection when the
// server's permessage-deflate answer carries a parameter the client did not offer (client_max_window_bits)
// or an invalid value (server_max_window_bits=20). A terminating relay refuses such an upstream 101 with
// 502, and the transparent relay already refuses an extension *name* the client did not offer and a
// subprotocol it did not offer ("502, not a 101 the client must fail"). The transparent relay, though,
// checks only extension names: it hands the client a 101 the client must then fail, and the upstream
// session is opened for nothing. Both modes should answer 502.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, type PerMessageDeflateOptions } from 'ws';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { startGateway, startRawUpstream, switchingProtocols } from './helpers.js';

const answers: ReadonlyArray<readonly [string, string, PerMessageDeflateOptions]> = [
  ['client_max_window_bits=10 to an offer without client_max_window_bits', 'permessage-deflate; client_max_window_bits=10', { clientMaxWindowBits: false as unknown as number }],
  ['server_max_window_bits=20 (outside 8..15)', 'permessage-deflate; server_max_window_bits=20', {}],
  ['an unknown parameter', 'permessage-deflate; x_unknown=1', {}],
];

// Terminating sessions (perMessageDeflate: true) already answer 502 to the last two: the relay's own `ws` client
// fails the upstream link. Transparent sessions are the defect.
const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [['transparent', {}]];

/** What a `ws` client offering permessage-deflate saw: `status N`, `open` or `error …`. */
function outcome(url: string, offer: PerMessageDeflateOptions): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: offer });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(`status ${res.statusCode}`);
      ws.terminate();
    });
    ws.on('error', (error) => resolve(`error ${error.message}`));
    ws.on('open', () => {
      resolve('open');
      ws.terminate();
    });
  });
}

for (const [mode, options] of modes) {
  for (const [name, answer, offer] of answers) {
    test(`${mode}: an upstream answering permessage-deflate with ${name}: 502, never a 101 the client must fail (RFC 7692 §7.1.2)`, async () => {
      const upstream = await startRawUpstream((socket, key) => {
        socket.write(switchingProtocols(key).replace(/\r\n\r\n$/, `\r\nSec-WebSocket-Extensions: ${answer}\r\n\r\n`));
      });
      const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
      try {
        assert.is(await outcome(`${gateway.url}/deflate`, offer), 'status 502');
      } finally {
        await gateway.close();
        await upstream.close();
      }
    });
  }
}

test.run();
