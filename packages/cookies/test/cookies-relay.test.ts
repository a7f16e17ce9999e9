// End-to-end: cookies() in a real relay in front of a real upstream that sets two cookies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { cookies } from '../src/index.js';

const session = 'session="s:abc,def"; Domain=auth.internal; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; Secure; SameSite=Lax';
const preference = 'theme=dark; Domain = .auth.internal ; Path=/; Max-Age=3600; Priority=Low';

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

async function front(stages: Stage[]): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/auth', stages }));
  fronts.push(served);
  return served;
}

/** The Set-Cookie lines exactly as the client received them, in order. */
async function setCookieLines(served: RelayServer<Relay>): Promise<string[]> {
  const response = await fetchRaw(`${served.url}/auth/login`);
  assert.is(response.status, 200);
  assert.is(response.text, 'logged in', 'the body passes untouched');
  const lines: string[] = [];
  for (let index = 0; index < response.rawHeaders.length; index += 2) {
    if (response.rawHeaders[index]!.toLowerCase() === 'set-cookie') lines.push(response.rawHeaders[index + 1]!);
  }
  return lines;
}

test.before(async () => {
  upstream = await startUpstream((_req, res) => {
    res.setHeader('Set-Cookie', [session, preference]);
    res.setHeader('Content-Type', 'text/plain');
    res.end('logged in');
  });
});

test.after(async () => {
  await Promise.all(fronts.map((served) => served.close()));
  await upstream.close();
});

test('recipe, drop the Domain: both cookies become host-only, everything else byte for byte', async () => {
  const served = await front([cookies({ rewriteDomain: () => '' })]);
  assert.equal(await setCookieLines(served), [
    'session="s:abc,def"; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; Secure; SameSite=Lax',
    'theme=dark; Path=/; Max-Age=3600; Priority=Low',
  ]);
});

test('recipe, rewrite the Domain: both cookies scoped to example.com, spacing kept', async () => {
  const served = await front([cookies({ rewriteDomain: () => 'example.com' })]);
  assert.equal(await setCookieLines(served), [
    'session="s:abc,def"; Domain=example.com; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; Secure; SameSite=Lax',
    'theme=dark; Domain = example.com ; Path=/; Max-Age=3600; Priority=Low',
  ]);
});

test('recipe, preserve the Domain (the default): both cookies arrive exactly as the upstream sent them, as two headers', async () => {
  const served = await front([cookies()]);
  assert.equal(await setCookieLines(served), [session, preference]);
});

test('a map per domain with path and flag rules, through the relay', async () => {
  const served = await front([
    cookies({ rewriteDomain: { 'auth.internal': 'example.com' }, rewritePath: { '/': '/auth' }, secure: true, sameSite: 'Strict' }),
  ]);
  assert.equal(await setCookieLines(served), [
    'session="s:abc,def"; Domain=example.com; Path=/auth; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; Secure; SameSite=Strict',
    'theme=dark; Domain = example.com ; Path=/auth; Max-Age=3600; Priority=Low; Secure; SameSite=Strict',
  ]);
});

test.run();
