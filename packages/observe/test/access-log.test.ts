import { createServer, get as httpGet } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { Registry } from 'prom-client';
import { accessLog, metrics, observe, requestId, type AccessLogFields } from '../src/index.js';
import { echoSession, scripted, serveWithUpgrades, startEchoWs } from './helpers.js';

const fieldNames = [
  'method', 'path', 'status', 'bytesIn', 'bytesOut', 'duration', 'ttfb', 'upstream',
  'attempts', 'code', 'grpcStatus', 'client', 'requestId', 'traceId', 'spanId', 'websocket', 'headers',
].sort();

/** A sink that keeps each written line. */
function lines() {
  const written: string[] = [];
  return { written, write: (line: string) => written.push(line) };
}

test('a JSON line per request to the relay logger, every field, after a retry', async () => {
  const upstream = await scripted([503, 200]);
  const logger = memoryLogger();
  const obs = observe({ requestId: true, accessLog: true });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, logger, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), obs.attempt] }),
  );
  const response = await fetchRaw(`${served.url}/items?token=s3cret&page=2`, {
    method: 'PUT',
    body: 'twelve bytes',
    headers: { 'user-agent': 'test-agent', 'x-request-id': 'abc-123' },
  });
  assert.is(response.status, 200);
  assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'request')));
  const line = logger.lines.find((entry) => entry.message === 'request')!;
  assert.is(line.level, 'info');
  const fields = line.fields as unknown as AccessLogFields;
  assert.equal(Object.keys(fields).sort(), fieldNames);
  assert.is(fields.method, 'PUT');
  assert.is(fields.path, '/items?token=[REDACTED]&page=[REDACTED]');
  assert.is(fields.status, 200);
  assert.is(fields.bytesIn, 12);
  assert.is(fields.bytesOut, 5);
  assert.is(fields.attempts, 2);
  assert.is(fields.upstream, upstream.url);
  assert.is(fields.code, null);
  assert.is(fields.client, '127.0.0.1');
  assert.is(fields.requestId, 'abc-123');
  // No tracing in this observation: no trace to point at.
  assert.is(fields.traceId, null);
  assert.is(fields.spanId, null);
  assert.is(fields.websocket, false);
  assert.equal(fields.headers, { 'user-agent': 'test-agent', referer: undefined });
  assert.ok(fields.ttfb !== null && fields.ttfb > 0 && fields.ttfb <= fields.duration, `ttfb ${fields.ttfb}, duration ${fields.duration}`);
  assert.ok(fields.duration < 10_000);
  // The line survives a JSON round trip with every field.
  assert.equal(Object.keys(JSON.parse(JSON.stringify({ ...fields, headers: { ...fields.headers, referer: null } }))).sort(), fieldNames);
  await served.close();
  await upstream.close();
});

test('stream sink: one parseable JSON line per request; unreachable upstream logs 502 and its code', async () => {
  const port = await closedPort();
  const sink = lines();
  const log = accessLog({ stream: sink });
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [log.request, log.attempt] }));
  const response = await fetchRaw(`${served.url}/down`);
  assert.is(response.status, 502);
  assert.ok(await waitFor(() => sink.written.length === 1));
  assert.ok(sink.written[0]!.endsWith('\n'));
  const parsed = JSON.parse(sink.written[0]!) as AccessLogFields & { time: string; level: string; msg: string };
  assert.equal(Object.keys(parsed).sort(), [...fieldNames, 'level', 'msg', 'time'].sort());
  assert.is(parsed.msg, 'request');
  assert.is(parsed.level, 'info');
  assert.ok(!Number.isNaN(Date.parse(parsed.time)));
  assert.is(parsed.status, 502);
  assert.is(parsed.code, 'ERR_UPSTREAM_UNREACHABLE');
  assert.is(parsed.attempts, 1);
  assert.is(parsed.ttfb, null);
  assert.is(parsed.bytesOut, Buffer.byteLength(response.text));
  assert.is(parsed.requestId, null);
  await served.close();
});

test('a path with characters JSON escapes, sent raw, is still one parseable line with the path as sent (query redacted)', async () => {
  const upstream = await startUpstream();
  const sink = lines();
  const log = accessLog({ stream: sink });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  // Raw bytes: a URL parser would percent-encode the quote; node's HTTP parser lets it through.
  const socket = connect(Number(new URL(served.url).port), '127.0.0.1');
  socket.on('error', () => {});
  socket.end('GET /say"hi"?k="v" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  socket.resume();
  assert.ok(await waitFor(() => sink.written.length === 1));
  const line = sink.written[0]!;
  assert.ok(line.endsWith('}\n') && line.indexOf('\n') === line.length - 1, line);
  assert.is((JSON.parse(line) as AccessLogFields).path, '/say"hi"?k=[REDACTED]');
  await served.close();
  await upstream.close();
});

test('redaction: listed secret headers and query values never reach the line; query drop and keep', async () => {
  const upstream = await startUpstream();
  for (const [query, expected] of [
    ['redact', '/a?key=[REDACTED]&[REDACTED]&x=[REDACTED]'],
    ['drop', '/a'],
    ['keep', '/a?key=v4lue&t0ken&x='],
  ] as const) {
    const sink = lines();
    const log = accessLog({ stream: sink, query, headers: ['authorization', 'cookie', 'x-api-key', 'x-tenant'] });
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
    await fetchRaw(`${served.url}/a?key=v4lue&t0ken&x=`, {
      headers: { authorization: 'Bearer sup3rsecret', cookie: 'sid=c00kie', 'x-api-key': 'k3y', 'x-tenant': 'acme' },
    });
    assert.ok(await waitFor(() => sink.written.length === 1));
    const line = sink.written[0]!;
    const parsed = JSON.parse(line) as AccessLogFields;
    assert.is(parsed.path, expected);
    assert.equal(parsed.headers, { authorization: '[REDACTED]', cookie: '[REDACTED]', 'x-api-key': '[REDACTED]', 'x-tenant': 'acme' });
    for (const secret of ['sup3rsecret', 'c00kie', 'k3y']) assert.not.ok(line.includes(secret), `${secret} in ${line}`);
    if (query !== 'keep') assert.not.ok(line.includes('v4lue') || line.includes('t0ken'));
    await served.close();
  }
  await upstream.close();
});

test('Combined Log Format to a stream, quotes escaped', async () => {
  const upstream = await scripted([200]);
  const sink = lines();
  const log = accessLog({ stream: sink, format: 'combined' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  await fetchRaw(`${served.url}/page?q=1`, { headers: { referer: 'http://ref.example/', 'user-agent': 'agent "quoted"' } });
  assert.ok(await waitFor(() => sink.written.length === 1));
  const line = sink.written[0]!;
  assert.match(
    line,
    /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/page\?q=\[REDACTED\] HTTP\/1\.1" 200 5 "http:\/\/ref\.example\/" "agent \\x22quoted\\x22"\n$/,
  );
  await served.close();
  await upstream.close();
});

test('a WebSocket session is one line when it closes, with the bytes of its frames', async () => {
  const upstream = await startEchoWs();
  const logger = memoryLogger();
  const obs = observe({ requestId: true, accessLog: { logger } });
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url, stages: [obs.request, obs.attempt] });
  const echoes = await echoSession(`${served.url}/chat?room=1`, ['one', 'two']);
  assert.equal(echoes, ['one', 'two']);
  assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'request')));
  const fields = logger.lines.find((line) => line.message === 'request')!.fields as unknown as AccessLogFields;
  assert.is(fields.websocket, true);
  assert.is(fields.status, 101);
  assert.is(fields.path, '/chat?room=[REDACTED]');
  assert.is(fields.attempts, 1);
  assert.ok(typeof fields.requestId === 'string' && fields.requestId.length > 0);
  // Two masked 3-byte messages and a close frame in; the 101 head, two echoes and a close frame out.
  assert.ok(fields.bytesIn >= 2 * 9 && fields.bytesIn < 200, `bytesIn ${fields.bytesIn}`);
  assert.ok(fields.bytesOut >= 2 * 5 && fields.bytesOut < 1000, `bytesOut ${fields.bytesOut}`);
  assert.ok(fields.ttfb !== null && fields.ttfb <= fields.duration);
  await served.close();
  await upstream.close();
});

test('requestId() alone also feeds the access line', async () => {
  const upstream = await scripted([200]);
  const sink = lines();
  const log = accessLog({ stream: sink });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, requestId(), log.attempt] }));
  const response = await fetchRaw(`${served.url}/`);
  assert.ok(await waitFor(() => sink.written.length === 1));
  const parsed = JSON.parse(sink.written[0]!) as AccessLogFields;
  assert.is(parsed.requestId, response.headers['x-request-id']);
  await served.close();
  await upstream.close();
});

test('a client that leaves mid-body: the upstream status, the bytes sent, ERR_CLIENT_ABORTED', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first chunk');
  }, { streaming: true });
  const sink = lines();
  const log = accessLog({ stream: sink });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  await new Promise<void>((resolve) => {
    const req = httpGet(`${served.url}/stream`, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
  });
  assert.ok(await waitFor(() => sink.written.length === 1));
  const parsed = JSON.parse(sink.written[0]!) as AccessLogFields;
  assert.is(parsed.status, 200);
  assert.is(parsed.code, 'ERR_CLIENT_ABORTED');
  assert.is(parsed.bytesOut, 'first chunk'.length);
  await served.close();
  await upstream.close();
});

test('without the attempt stage, the request stage counts what is inside it as one attempt', async () => {
  const upstream = await scripted([503, 200]);
  const sink = lines();
  const log = accessLog({ stream: sink });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, retry({ maxRetries: 1, backoffFactor: 1 })] }));
  assert.is((await fetchRaw(`${served.url}/`)).status, 200);
  assert.ok(await waitFor(() => sink.written.length === 1));
  const parsed = JSON.parse(sink.written[0]!) as AccessLogFields;
  assert.is(parsed.attempts, 1);
  assert.is(upstream.requests.length, 2);
  assert.ok(parsed.ttfb !== null);
  await served.close();
  await upstream.close();
});

test('secrets stay redacted: redactHeaders adds to the defaults, in both formats; the Referer query is redacted', async () => {
  const upstream = await scripted([200]);
  const json = lines();
  const combined = lines();
  const headers = ['authorization', 'cookie', 'x-session', 'referer'];
  const jsonLog = accessLog({ stream: json, headers, redactHeaders: ['x-session'] });
  const combinedLog = accessLog({ stream: combined, format: 'combined', redactHeaders: ['user-agent'] });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [jsonLog.request, combinedLog.request, combinedLog.attempt, jsonLog.attempt] }));
  await fetchRaw(`${served.url}/p`, {
    headers: { authorization: 'Bearer t0psecret', cookie: 'sid=c00kie', 'x-session': 's3ss', referer: 'https://app.example/reset?token=r3set&step=2', 'user-agent': 'agent/1' },
  });
  assert.ok(await waitFor(() => json.written.length === 1 && combined.written.length === 1), JSON.stringify([json.written, combined.written]));
  const parsed = JSON.parse(json.written[0]!) as AccessLogFields;
  assert.equal(parsed.headers, {
    authorization: '[REDACTED]',
    cookie: '[REDACTED]',
    'x-session': '[REDACTED]',
    referer: 'https://app.example/reset?token=[REDACTED]&step=[REDACTED]',
  });
  assert.match(combined.written[0]!, / 200 5 "https:\/\/app.example\/reset\?token=\[REDACTED\]&step=\[REDACTED\]" "\[REDACTED\]"\n$/);
  for (const line of [...json.written, ...combined.written]) assert.not.match(line, /t0psecret|c00kie|s3ss|r3set|agent\/1/);
  await served.close();
  await upstream.close();
});

test('logged headers are the client\'s, not the ones the relay rewrote for the upstream', async () => {
  const upstream = await scripted([200]);
  const sink = lines();
  const log = accessLog({ stream: sink, headers: ['host', 'user-agent'] });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  await fetchRaw(`${served.url}/`, { headers: { host: 'public.example', 'user-agent': 'agent/1' } });
  assert.ok(await waitFor(() => sink.written.length === 1));
  assert.equal((JSON.parse(sink.written[0]!) as AccessLogFields).headers, { host: 'public.example', 'user-agent': 'agent/1' });
  assert.is(upstream.requests[0]!.headers.host, new URL(upstream.url).host);
  await served.close();
  await upstream.close();
});

test('bytesOut of a relay error is its short body as sent: none for HEAD', async () => {
  const port = await closedPort();
  const sink = lines();
  const log = accessLog({ stream: sink });
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [log.request, log.attempt] }));
  const got = await fetchRaw(`${served.url}/`);
  const head = await fetchRaw(`${served.url}/`, { method: 'HEAD' });
  assert.is(got.status, 502);
  assert.is(head.status, 502);
  assert.ok(await waitFor(() => sink.written.length === 2));
  const [getLine, headLine] = sink.written.map((line) => JSON.parse(line) as AccessLogFields);
  assert.is(getLine!.bytesOut, Buffer.byteLength(got.text));
  assert.ok(getLine!.bytesOut > 0);
  assert.is(headLine!.method, 'HEAD');
  assert.is(headLine!.bytesOut, 0);
  await served.close();
});

test('accessLog() and metrics() side by side: each counts the request, its body bytes once', async () => {
  const upstream = await scripted([200]);
  const sink = lines();
  const registry = new Registry();
  const log = accessLog({ stream: sink });
  const m = metrics({ registry, relay: 'side' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, m.request, m.attempt, log.attempt] }));
  assert.is((await fetchRaw(`${served.url}/`, { method: 'POST', body: 'four' })).status, 200);
  assert.ok(await waitFor(() => sink.written.length === 1));
  const parsed = JSON.parse(sink.written[0]!) as AccessLogFields;
  assert.equal([parsed.bytesIn, parsed.bytesOut], [4, 5]);
  const text = await registry.metrics();
  assert.match(text, /relay_requests_total\{relay="side",route="",method="POST",status_class="2xx",target="[^"]+"\} 1\n/);
  assert.match(text, /relay_request_body_bytes_total\{relay="side"\} 4\n/);
  assert.match(text, /relay_response_body_bytes_total\{relay="side"\} 5\n/);
  await served.close();
  await upstream.close();
});

test('the attempt stage without its request stage records nothing, and says so once in the relay log', async () => {
  const upstream = await scripted([200]);
  const sink = lines();
  const logger = memoryLogger();
  const log = accessLog({ stream: sink });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [retry(), log.attempt] }));
  assert.is((await fetchRaw(`${served.url}/`)).status, 200);
  assert.is((await fetchRaw(`${served.url}/`)).status, 200);
  const warnings = logger.lines.filter((line) => line.level === 'warn' && line.fields.stage === 'observe.attempt');
  assert.is(warnings.length, 1);
  assert.match(warnings[0]!.message, /no request stage/);
  assert.is(sink.written.length, 0);
  await served.close();
  await upstream.close();
});

test('options are checked: unknown keys name the nearest one; no sink at all is refused', () => {
  assert.throws(() => accessLog({ formt: 'json' } as never), /unknown option "formt" \(did you mean "format"\?/);
  assert.throws(() => accessLog({ format: 'clf' as never }), /format must be one of "json", "combined"/);
  assert.throws(() => accessLog({ level: 'trace' as never }), /level must be one of/);
  assert.throws(() => accessLog({ logger: memoryLogger(), stream: lines() }), /a logger or a stream, not both/);
  const log = accessLog();
  assert.throws(() => createRelay({ targetBaseUrl: 'http://127.0.0.1:1', stages: [log.request, log.attempt] }), /nowhere to write/);
});


test("relay.dispatch with onError: the line and the count say what the app's error handler sent, not the relay's 502", async () => {
  const port = await closedPort();
  const sink = lines();
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: sink }, metrics: { registry } });
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [obs.request, obs.attempt] });
  const page = 'down for maintenance';
  const server = createServer((req, res) => {
    // What toConnect({ errors: 'next' }) does: the app's error handler answers (here as Express's
    // finalhandler writes, headers set one by one), with a 404 page.
    const answer = () => {
      res.statusCode = 404;
      res.setHeader('content-length', page.length);
      res.end(page);
    };
    relay.dispatch(req, res, { path: req.url ?? '/', mountPath: '', onError: () => setTimeout(answer, 20) });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const answer = await fetchRaw(`${url}/items`);
  const head = await fetchRaw(`${url}/items`, { method: 'HEAD' });
  assert.equal([answer.status, answer.text, head.status], [404, page, 404]);
  assert.ok(await waitFor(() => sink.written.length === 2), JSON.stringify(sink.written));
  const [get, headLine] = sink.written.map((line) => JSON.parse(line) as AccessLogFields);
  assert.equal([get!.status, get!.bytesOut, get!.code, get!.attempts], [404, page.length, 'ERR_UPSTREAM_UNREACHABLE', 1]);
  assert.ok(get!.duration >= 15, `the line ends when the app's answer does: ${get!.duration} ms`);
  assert.equal([headLine!.status, headLine!.bytesOut], [404, 0]);
  const scrape = await registry.metrics();
  assert.is(scrape.match(/relay_requests_total\{[^}]*status_class="4xx"[^}]*\} 1/g)?.length, 2, scrape); // GET and HEAD
  assert.not.match(scrape, /relay_requests_total\{[^}]*status_class="5xx"/);
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await relay.shutdown();
});
test.run();
