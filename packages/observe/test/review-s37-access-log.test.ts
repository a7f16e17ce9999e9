// Review s37 (issue 18, @relay/observe access log): the Combined Log Format option checked against
// how Apache (mod_log_config, ap_escape_logitem) and nginx (ngx_http_log_module, default escaping)
// write the same request, sent as raw bytes on a real socket so the header bytes are exactly a
// real client's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { sendRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { accessLog } from '../src/index.js';

/** The fields of a Combined Log Format line: host, ident, user, [time], "request", status, bytes, "referer", "agent". */
const combined = /^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\S+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

async function servedWithCombinedLog(): Promise<{ port: number; written: string[]; close(): Promise<void> }> {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 }).end('hello');
  });
  const written: string[] = [];
  const log = accessLog({ stream: { write: (line: string) => written.push(line) }, format: 'combined' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  return {
    port: served.port,
    written,
    close: async () => {
      await served.close();
      await upstream.close();
    },
  };
}

test('regression: a Combined line has the nine fields in Apache/nginx order, the query redacted, 200 and the body size', async () => {
  // nginx: log_format combined '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'.
  const served = await servedWithCombinedLog();
  try {
    const answer = await sendRaw(served.port, 'GET /page?token=abc HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: curl/8.5.0\r\nReferer: http://shop.test/\r\nConnection: close\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(await waitFor(() => served.written.length === 1));
    const line = served.written[0]!;
    assert.ok(line.endsWith('\n'), 'one line per request');
    const fields = combined.exec(line.trimEnd());
    assert.ok(fields, `not a Combined Log Format line: ${line}`);
    const [, host, ident, user, time, request, status, bytes, referer, agent] = fields!;
    assert.is(host, '127.0.0.1');
    assert.is(ident, '-');
    assert.is(user, '-');
    assert.match(time!, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$/);
    assert.is(request, 'GET /page?token=[REDACTED] HTTP/1.1');
    assert.is(status, '200');
    assert.is(bytes, '5');
    assert.is(referer, 'http://shop.test/');
    assert.is(agent, 'curl/8.5.0');
  } finally {
    await served.close();
  }
});

test('a User-Agent with UTF-8 bytes is logged byte for byte as \\xHH escapes (nginx and Apache), not re-encoded as mojibake', async () => {
  // nginx log_format: 'For default escaping, characters """, "\" and other characters with values less than 32
  // or above 126 are escaped as "\xXX"' (since 1.1.6). Apache's ap_escape_logitem escapes every byte that is not
  // printable the same way (\xc3\xa9). Either way the line holds the client's bytes, and stays ASCII.
  // Relay writes node's latin1 view of the header (one character per byte) as UTF-8: "Café" becomes "CafÃ©".
  const served = await servedWithCombinedLog();
  try {
    const head = Buffer.concat([
      Buffer.from('GET /menu HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Caf'),
      Buffer.from('é', 'utf8'), // 0xC3 0xA9 on the wire
      Buffer.from('/1.0\r\nConnection: close\r\n\r\n'),
    ]);
    const answer = await sendRaw(served.port, head);
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(await waitFor(() => served.written.length === 1));
    const fields = combined.exec(served.written[0]!.trimEnd());
    assert.ok(fields, `not a Combined Log Format line: ${served.written[0]}`);
    const agent = fields![9]!;
    assert.not.ok(agent.includes('Ã'), `the agent was re-encoded: ${JSON.stringify(agent)}`);
    assert.is(agent.toLowerCase(), 'caf\\xc3\\xa9/1.0');
  } finally {
    await served.close();
  }
});

test('a JSON line holds a UTF-8 User-Agent as the text the client sent; bytes that are not UTF-8 stay one character each', async () => {
  // nginx's escape=json passes bytes above 127 through: a UTF-8 header is UTF-8 text in the line. Node reads the
  // bytes one character each (latin1); the line reads valid UTF-8 back as UTF-8, and anything else as ISO-8859-1.
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': 2 }).end('ok');
  });
  const written: string[] = [];
  const log = accessLog({ stream: { write: (line: string) => written.push(line) } });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  try {
    for (const agent of [Buffer.from('Café/1.0', 'utf8'), Buffer.from('Caf\xe9/1.0', 'latin1'), Buffer.from('Café/1.0', 'utf8')]) {
      const head = Buffer.concat([Buffer.from('GET /menu HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: '), agent, Buffer.from('\r\nConnection: close\r\n\r\n')]);
      assert.match(await sendRaw(served.port, head), /^HTTP\/1\.1 200 /);
    }
    assert.ok(await waitFor(() => written.length === 3));
    const agents = written.map((line) => (JSON.parse(line) as { headers: Record<string, string> }).headers['user-agent']);
    // The lone 0xE9 is not UTF-8: read as ISO-8859-1 it is the same é, not U+FFFD.
    assert.equal(agents, ['Café/1.0', 'Caf\u00e9/1.0', 'Café/1.0']);
    assert.not.ok(written.some((line) => line.includes('Ã')), 'no mojibake');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
