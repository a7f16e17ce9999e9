// Review s37 (issue 18, @relay/observe through the gateway config): a route with `compress`,
// `metrics`, `accessLog` and `requestId` on, served in-process by `serve()`, checked against what
// the client received on the wire, docs/observability.md's metric list and the access line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, startUpstream, waitFor } from '@relay/testkit';
import { serve } from '../src/index.js';
import { configDir } from './bin.js';

/** The value of one series in a scrape, `undefined` when it is absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('a compressed answer: relay_response_body_bytes_total counts the bytes sent to the client, as the access line does', async () => {
  // docs/observability.md: relay_response_body_bytes_total is "Response body bytes sent to clients"; the access line's
  // bytesOut is the same figure (nginx's $body_bytes_sent, after gzip). The gateway ran `metrics` (slot 30) inside
  // `compress` (slot 15), so the counter gets the upstream's uncompressed bytes while the access line (slot 10) and the
  // client get the gzip body: a bandwidth panel built on it overstates egress several times.
  const files = configDir();
  const body = JSON.stringify({ items: Array.from({ length: 300 }, (_unused, index) => ({ id: index, name: `item ${index}` })) });
  const api = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  const config = files.write(
    'gateway.yaml',
    ['listen:', '  - { host: 127.0.0.1, port: 0 }', 'routes:', '  - name: api', '    match: { path: /api }', `    upstream: ${api.url}`, '    compress: true', '    metrics: true', '    accessLog: true', '    requestId: true', ''].join('\n'),
  );
  const logger = memoryLogger();
  const running = await serve({ config, logger: logger as never, watch: false });
  try {
    const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
    const answer = await fetchRaw(`${base}/api/items`, { headers: { 'accept-encoding': 'gzip' } });
    assert.is(answer.status, 200);
    assert.is(answer.headers['content-encoding'], 'gzip');
    const sent = answer.body.length;
    assert.ok(sent < Buffer.byteLength(body) / 2, `compressed: ${sent} of ${Buffer.byteLength(body)}`);
    assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'request')));
    const line = logger.lines.find((entry) => entry.message === 'request')!.fields;
    assert.is(line.bytesOut, sent, 'the access line counts the bytes the client got');
    assert.is(line.requestId, answer.headers['x-request-id'], 'the access line has the request id the client got');
    const scrape = (await fetchRaw(`${base}/metrics`)).text;
    assert.is(value(scrape, 'relay_requests_total{relay="api",route="",method="GET",status_class="2xx",target=""}'), 1);
    assert.is(value(scrape, 'relay_response_body_bytes_total{relay="api"}'), sent, 'the counter counts the bytes the client got');
  } finally {
    await running.stop();
    await api.close();
    files.cleanup();
  }
});

test.run();
