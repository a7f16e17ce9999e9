// docs/reuse.md: the stage packages' rules without a relay, in an http-proxy-middleware hook,
// a Fastify @fastify/http-proxy rewriteHeaders, and around fetch. Run by reuse.test.ts.
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import express from 'express';
import Fastify from 'fastify';
import fastifyHttpProxy from '@fastify/http-proxy';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { setCookieRewriter, type CookiesOptions } from '@relay/cookies';
import { headerRules, locationRewriter, type HeadersOptions, type LocationClient } from '@relay/headers';
import { retryPolicy, withRetry } from '@relay/retry';

// One set of options, shared with the relay that runs the same rules as stages.
export const cookieOptions: CookiesOptions = { rewriteDomain: () => '', rewritePath: { '/': '/auth' } };
export const headerOptions: HeadersOptions = { dropResponse: ['x-debug-info'], extraResponse: { 'x-frame-options': 'DENY' } };

/** The scheme and Host the client used, for an absolute Location. */
function clientOf(req: { headers: IncomingHttpHeaders; socket: object | null }): LocationClient {
  // Fastify may have let go of the socket once a request body was forwarded: these servers are plain http.
  return { scheme: (req.socket as TLSSocket | null)?.encrypted === true ? 'https' : 'http', host: req.headers.host ?? '' };
}

// http-proxy-middleware 3: the rules built once, applied in on.proxyRes.
export function expressGateway(authService: string): express.Express {
  const rewriteCookies = setCookieRewriter(cookieOptions);
  const rewriteLocation = locationRewriter({ targetBaseUrl: authService, upstreamPrefix: '/api', mountPath: '/auth' });
  const responseRules = headerRules(headerOptions).response;
  const app = express();
  app.use(
    '/auth',
    createProxyMiddleware({
      target: `${authService}/api`,
      changeOrigin: true,
      on: {
        proxyRes(proxyRes, req) {
          // Location, Content-Location and the URL of Refresh, as the rewriteLocation() stage.
          const headers = rewriteLocation.headers(responseRules(proxyRes.headers), clientOf(req));
          headers['set-cookie'] = rewriteCookies(headers['set-cookie']);
          proxyRes.headers = headers;
        },
      },
    }),
  );
  return app;
}

// Fastify 5 and @fastify/http-proxy 11: the same rules in replyOptions.rewriteHeaders.
export async function fastifyGateway(authService: string) {
  const rewriteCookies = setCookieRewriter(cookieOptions);
  const rewriteLocation = locationRewriter({ targetBaseUrl: authService, upstreamPrefix: '/api', mountPath: '/auth' });
  const responseRules = headerRules(headerOptions).response;
  const app = Fastify();
  await app.register(fastifyHttpProxy, {
    upstream: authService,
    prefix: '/auth',
    rewritePrefix: '/api',
    replyOptions: {
      rewriteHeaders(upstreamHeaders, request) {
        const headers = rewriteLocation.headers(responseRules(upstreamHeaders), request === undefined ? undefined : clientOf(request.raw));
        headers['set-cookie'] = rewriteCookies(headers['set-cookie']);
        return headers;
      },
    },
  });
  return app;
}

// Around fetch: the header rules on a Headers object, the retries of retry() with a deadline.
const inventoryHeaders = headerRules({ dropRequest: ['cookie'], extraRequest: { 'x-client': 'storefront' } }).request;

export function getInventory(inventoryService: string, init: { headers?: Record<string, string> } = {}): Promise<Response> {
  const headers = inventoryHeaders(new Headers(init.headers));
  return withRetry(({ signal }) => fetch(`${inventoryService}/inventory`, { headers, signal }), {
    method: 'GET',
    maxRetries: 3,
    backoffFactor: 100,
    jitter: true,
    deadline: 5_000,
  });
}

// The policy alone, in a loop of your own (a queue consumer that waits its own way).
const orderPolicy = retryPolicy({ maxRetries: 2, statuses: [429, 503], methods: ['POST'], backoffFactor: 50 });

export async function submitOrder(orderService: string, order: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${orderService}/orders`, { method: 'POST', body: order, headers: { 'idempotency-key': 'order-42' } });
    const outcome = { method: 'POST', status: response.status, headers: response.headers };
    if (!orderPolicy.shouldRetry(attempt, outcome)) return response;
    await response.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, orderPolicy.delay(attempt, outcome)!));
  }
}
