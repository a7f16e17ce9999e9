// Transparent sessions relay the upstream's Sec-WebSocket-Extensions answer to the client as it is, so an answer the
// client must fail (RFC 7692 §7.1: an unknown or repeated parameter, window bits outside 8..15, a value on
// *_no_context_takeover, client_max_window_bits the client did not offer, permessage-deflate accepted twice) is refused
// by the relay with 502 ERR_UPSTREAM_PROTOCOL, a log line and the upstream connection closed: never a 101 the client
// then fails, with an upstream session opened for nothing. (Terminating sessions get the same verdict from the relay's
// own `ws` client.) A valid answer still gives a 101 and messages flow.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, type PerMessageDeflateOptions } from 'ws';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { extensionAnswerProblem } from '../src/extension-answer.js';
import { inbox, noSocketsLeft, openClient, startGateway, startRawUpstream, startWsUpstream, switchingProtocols } from './helpers.js';

/** `ws`'s default offer (`permessage-deflate; client_max_window_bits`) unless the case says otherwise. */
const answers: ReadonlyArray<readonly [string, string, PerMessageDeflateOptions]> = [
  ['client_max_window_bits=10 to an offer without client_max_window_bits', 'permessage-deflate; client_max_window_bits=10', { clientMaxWindowBits: false as unknown as number }],
  ['client_max_window_bits=13 to an offer of client_max_window_bits=12', 'permessage-deflate; client_max_window_bits=13', { clientMaxWindowBits: 12 }],
  ['server_max_window_bits=20 (outside 8..15)', 'permessage-deflate; server_max_window_bits=20', {}],
  ['server_max_window_bits=7 (outside 8..15)', 'permessage-deflate; server_max_window_bits=7', {}],
  ['an unknown parameter', 'permessage-deflate; x_unknown=1', {}],
  ['a repeated parameter', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', {}],
  ['a value on server_no_context_takeover', 'permessage-deflate; server_no_context_takeover=1', {}],
  ['a value on client_no_context_takeover', 'permessage-deflate; client_no_context_takeover=yes', {}],
  ['permessage-deflate accepted twice', 'permessage-deflate, permessage-deflate; server_no_context_takeover', {}],
  ['a header that does not parse', 'permessage-deflate; server_max_window_bits=', {}],
];

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

for (const [name, answer, offer] of answers) {
  test(`transparent: an upstream answering permessage-deflate with ${name}: 502, a log line, the upstream closed`, async () => {
    const upstream = await startRawUpstream((socket, key) => {
      socket.write(switchingProtocols(key).replace(/\r\n\r\n$/, `\r\nSec-WebSocket-Extensions: ${answer}\r\n\r\n`));
    });
    const logger = memoryLogger();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(), logger });
    try {
      assert.is(await outcome(`${gateway.url}/deflate`, offer), 'status 502');
      assert.ok(
        await waitFor(() => logger.lines.some((line) => line.fields.code === 'ERR_UPSTREAM_PROTOCOL' && /Sec-WebSocket-Extensions/.test(String(line.fields.error))), 5_000),
        `logged with the detail: ${JSON.stringify(logger.lines.map((line) => line.fields))}`,
      );
      assert.ok(await waitFor(() => upstream.sockets.size === 0, 5_000), 'the upstream connection is closed');
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
}

test('transparent: a valid answer (server_no_context_takeover, client_max_window_bits=10 where offered) gives a 101 and messages flow', async () => {
  const upstream = await startWsUpstream({ perMessageDeflate: { serverNoContextTakeover: true, clientMaxWindowBits: 10, threshold: 0 } });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  let answer: string | undefined;
  try {
    const client = await new Promise<WebSocket>((resolve, reject) => {
      // `ws` offers client_max_window_bits without a value.
      const ws = new WebSocket(`${gateway.url}/deflate`, { perMessageDeflate: { threshold: 0 } });
      ws.on('upgrade', (res) => (answer = res.headers['sec-websocket-extensions']));
      ws.on('error', reject);
      ws.on('open', () => resolve(ws));
    });
    client.on('error', () => {});
    assert.is(answer, 'permessage-deflate; client_max_window_bits=10; server_no_context_takeover', 'the upstream’s answer, as it is');
    assert.match(client.extensions, /permessage-deflate/);
    const messages = inbox(client);
    const text = 'compress me '.repeat(1000);
    for (let i = 0; i < 3; i++) {
      client.send(`${i}: ${text}`);
      const echoed = await messages.next();
      assert.is(echoed.data.toString(), `${i}: ${text}`);
      assert.is(echoed.isBinary, false);
    }
    client.close();
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('transparent: client_max_window_bits up to the offered value is accepted', async () => {
  const upstream = await startWsUpstream({ perMessageDeflate: { clientMaxWindowBits: 10 } });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  try {
    const client = await openClient(`${gateway.url}/deflate`, [], { perMessageDeflate: { clientMaxWindowBits: 12 } });
    const messages = inbox(client);
    client.send('hello');
    assert.is((await messages.next()).data.toString(), 'hello');
    client.close();
    assert.ok(await noSocketsLeft(gateway, upstream));
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('extensionAnswerProblem: the answer is judged against every permessage-deflate offer, names without case', () => {
  const accepted: ReadonlyArray<readonly [string, string]> = [
    ['permessage-deflate', 'permessage-deflate'],
    ['permessage-deflate; client_max_window_bits="10"', 'permessage-deflate; client_max_window_bits'],
    ['permessage-deflate; client_max_window_bits=9', 'permessage-deflate, permessage-deflate; client_max_window_bits=9'],
    ['permessage-deflate; client_no_context_takeover; server_max_window_bits=8', 'permessage-deflate'],
    ['Permessage-Deflate', 'permessage-deflate'],
    ['x-custom; anything=1', 'x-custom, permessage-deflate'],
    // An offer `ws` cannot parse: names alone, as before.
    ['permessage-deflate; client_max_window_bits=10', 'permessage-deflate; client_max_window_bits; x="'],
  ];
  for (const [answer, offer] of accepted) assert.is(extensionAnswerProblem(answer, offer), null, `${answer} to ${offer}`);
  const refused: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['permessage-deflate; client_max_window_bits=10', 'permessage-deflate, permessage-deflate; client_max_window_bits=9', /client_max_window_bits/],
    ['x-custom', 'permessage-deflate', /not requested: x-custom/],
    ['permessage-deflate, PERMESSAGE-DEFLATE', 'permessage-deflate', /more than once/],
    ['permessage-deflate; server_max_window_bits=16', 'permessage-deflate', /server_max_window_bits/],
    ['', 'permessage-deflate', /Invalid Sec-WebSocket-Extensions header/],
  ];
  for (const [answer, offer, problem] of refused) assert.match(String(extensionAnswerProblem(answer, offer)), problem, `${answer} to ${offer}`);
});

test.run();
