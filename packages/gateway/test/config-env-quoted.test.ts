// A quoted environment reference (a YAML flow mapping `{ }` needs the quotes) is a number or a
// boolean where its key takes one and no such string, also inside keys whose value is a union:
// one limit or a list (rateLimit), true or options (websocket, compress), a URL or a target (upstream).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());

async function loaded(path: string, env: NodeJS.ProcessEnv = {}) {
  try {
    return await loadConfig(path, env);
  } catch (error) {
    assert.unreachable(`refused: ${(error as Error).message}`);
    throw error;
  }
}

test('rateLimit.points, websocket.idleTimeout and compress.threshold from a quoted reference are numbers, as retry.maxRetries and listen.port are (docs/gateway.md "unless its key takes only a number or a boolean")', async () => {
  const path = files.write(
    'flow-numbers.yaml',
    [
      'listen: [{ host: 127.0.0.1, port: "${GW_PORT:-8080}" }]',
      'routes:',
      '  - upstream: http://127.0.0.1:9000',
      '    retry: { maxRetries: "${GW_RETRIES:-2}" }',
      '    rateLimit: { points: "${GW_POINTS:-100}", duration: "${GW_WINDOW:-60000}" }',
      '    websocket: { idleTimeout: "${GW_WS_IDLE:-600000}" }',
      '    compress: { threshold: "${GW_COMPRESS_MIN:-2048}" }',
      '',
    ].join('\n'),
  );
  const route = (await loaded(path)).config.routes[0]!;
  assert.is(route.retry!.maxRetries, 2);
  assert.equal(route.rateLimit, { points: 100, duration: 60000 });
  assert.equal(route.websocket, { idleTimeout: 600000 });
  assert.equal(route.compress, { threshold: 2048 });
});

test('in the list form of rateLimit, and for keys taking a number or false, true or a word: the quoted value is what the key takes', async () => {
  const path = files.write(
    'flow-union-leaves.yaml',
    [
      'listen: [{ port: 0 }]',
      'routes:',
      '  - upstream: http://127.0.0.1:9000',
      '    rateLimit: [{ name: burst, points: "${GW_POINTS}", duration: 1000 }]',
      '    retry: { retryAfter: "${GW_RETRY_AFTER}" }',
      '    headers: { forwarded: "${GW_FORWARDED}", via: "${GW_VIA}" }',
      '',
    ].join('\n'),
  );
  const route = (await loaded(path, { GW_POINTS: '5', GW_RETRY_AFTER: 'false', GW_FORWARDED: 'true', GW_VIA: 'true' })).config.routes[0]!;
  assert.equal(route.rateLimit, [{ name: 'burst', points: 5, duration: 1000 }]);
  assert.is(route.retry!.retryAfter, false);
  assert.is(route.headers!.forwarded, true, 'forwarded takes true or append/replace: "true" is none of the words');
  assert.is(route.headers!.via, 'true', 'via takes a string (its own name): the quoted text stays text');
});

test("a quoted reference for a pool target's weight is a number, as in the gateway-balance example with its weight from the environment", async () => {
  // docs/gateway.md "Several upstreams": `- { url: "${API_3:-http://10.0.0.3:8000}", weight: 2 }`;
  // an operator who reads the weight from the environment too must quote it in the flow mapping.
  const path = files.write(
    'flow-weight.yaml',
    [
      'listen: [{ port: 0 }]',
      'routes:',
      '  - name: api',
      '    upstream:',
      '      - ${API_1:-http://10.0.0.1:8000}',
      '      - { url: "${API_3:-http://10.0.0.3:8000}", weight: "${API_3_WEIGHT:-2}" }',
      '',
    ].join('\n'),
  );
  assert.equal((await loaded(path)).config.routes[0]!.upstream, ['http://10.0.0.1:8000', { url: 'http://10.0.0.3:8000', weight: 2 }]);
});

test('a quoted reference in a block reused through a YAML alias (*h) stays a string, as it does where the anchor (&h) is', async () => {
  // docs/gateway.md: "In YAML a quoted reference stays a string (x-api-key: \"${API_KEY}\" keeps an all-digit key as text)".
  const path = files.write(
    'alias.yaml',
    [
      'listen: [{ port: 0 }]',
      'routes:',
      '  - match: { path: /a }',
      '    upstream: http://127.0.0.1:9',
      '    headers: &tenant',
      '      extraRequest: { x-tenant: "${TENANT}" }',
      '  - match: { path: /b }',
      '    upstream: http://127.0.0.1:9',
      '    headers: *tenant',
      '',
    ].join('\n'),
  );
  let config;
  try {
    ({ config } = await loadConfig(path, { TENANT: '12345' }));
  } catch (error) {
    assert.unreachable(`refused: ${(error as Error).message}`);
    return;
  }
  assert.equal(config.routes[0]!.headers!.extraRequest, { 'x-tenant': '12345' });
  assert.equal(config.routes[1]!.headers!.extraRequest, { 'x-tenant': '12345' });
});

test.run();
