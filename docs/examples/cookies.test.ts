import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { domainFunction, domainMap, dropDomain, pathsAndFlags, preserveDomain, rewriteDomain } from './cookies.js';

const session = 'session=abc; Domain=auth.internal; Path=/; HttpOnly; Secure';
const tracking = 'tracking=t1; Domain=.auth.internal; Path=/api/v1; Max-Age=60';
const hostOnly = 'prefs=dark; Path=/api/v1';

const upstream = await startUpstream((_req, res) => {
  res.setHeader('set-cookie', [session, tracking, hostOnly]);
  res.end('logged in');
});

/** The Set-Cookie lines the client got, in order, each its own header. */
async function cookieLines(url: string): Promise<string[]> {
  const response = await fetchRaw(url);
  assert.is(response.status, 200);
  return response.rawHeaders.filter((_, index, raw) => index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'set-cookie');
}

async function withStage(stage: Stage): Promise<string[]> {
  const gateway = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [stage] }));
  const lines = await cookieLines(`${gateway.url}/login`);
  await gateway.close();
  return lines;
}

test('drop the Domain: cookies bind to the host the browser used', async () => {
  const gateway = await serveRelay(dropDomain(upstream.url));
  assert.equal(await cookieLines(`${gateway.url}/auth/login`), [
    'session=abc; Path=/; HttpOnly; Secure',
    'tracking=t1; Path=/api/v1; Max-Age=60',
    hostOnly,
  ]);
  await gateway.close();
});

test('rewrite the Domain', async () => {
  assert.equal(await withStage(rewriteDomain()), [
    'session=abc; Domain=example.com; Path=/; HttpOnly; Secure',
    'tracking=t1; Domain=example.com; Path=/api/v1; Max-Age=60',
    'prefs=dark; Path=/api/v1; Domain=example.com',
  ]);
});

test("a map: '*' matches only cookies that have a Domain", async () => {
  assert.equal(await withStage(domainMap()), [
    'session=abc; Domain=example.com; Path=/; HttpOnly; Secure',
    'tracking=t1; Domain=example.com; Path=/api/v1; Max-Age=60',
    hostOnly,
  ]);
});

test('a function of the domain and the cookie name', async () => {
  assert.equal(await withStage(domainFunction()), ['session=abc; Path=/; HttpOnly; Secure', tracking, hostOnly]);
});

test('preserve the Domain: the default', async () => {
  assert.equal(await withStage(preserveDomain()), [session, tracking, hostOnly]);
});

test('paths, Secure and SameSite', async () => {
  assert.equal(await withStage(pathsAndFlags()), [
    'session=abc; Domain=auth.internal; Path=/; HttpOnly; Secure; SameSite=Lax',
    'tracking=t1; Domain=.auth.internal; Path=/auth; Max-Age=60; Secure; SameSite=Lax',
    'prefs=dark; Path=/auth; Secure; SameSite=Lax',
  ]);
});

test.after(() => upstream.close());

test.run();
