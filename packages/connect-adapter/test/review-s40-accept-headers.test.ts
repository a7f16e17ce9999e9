// Review s40 (acceptance, issue 3): request headers an earlier middleware set or removed on
// `req.headers` must be what the upstream gets, as http-proxy-middleware does (http-proxy's
// setupOutgoing copies `req.headers`). An auth middleware that adds `x-user-id` and deletes the
// client's `Authorization` before the proxy is the common Express pattern.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay } from '@relay/core';
import { fetchRaw, memoryLogger, startUpstream, type Upstream } from '@relay/testkit';
import { toConnect, type ConnectMiddleware } from '../src/index.js';
import { connect3, express5, polka1 } from './apps.js';

let upstream: Upstream;
const relays: Relay[] = [];

test.before(async () => {
  upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.headers));
  });
});

test.after(async () => {
  await Promise.all(relays.map((relay) => relay.shutdown()));
  await upstream.close();
});

/** What an auth middleware does before the proxy: the identity it found in, the client's token out. */
const authenticate: ConnectMiddleware = (req, _res, next) => {
  req.headers['x-user-id'] = '42';
  req.headers['x-tenant'] = 'acme';
  delete req.headers.authorization;
  next();
};

for (const framework of [express5, connect3, polka1]) {
  test(`${framework.name}: headers an earlier middleware set or deleted on req.headers reach the upstream as changed`, async () => {
    const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
    await relay.startup();
    relays.push(relay);
    const app = await framework.start({ before: [authenticate], mounts: [['/api', toConnect(relay)]] });
    try {
      const response = await fetchRaw(`${app.url}/api/orders`, { headers: { authorization: 'Bearer client-secret', 'x-tenant': 'spoofed' } });
      assert.is(response.status, 200);
      const seen = JSON.parse(response.text) as Record<string, string | undefined>;
      assert.is(seen['x-user-id'], '42', 'a header the middleware added');
      assert.is(seen['x-tenant'], 'acme', 'a header the middleware replaced');
      assert.is(seen.authorization, undefined, 'a header the middleware deleted must not reach the upstream');
    } finally {
      await app.close();
    }
  });
}

test.run();
