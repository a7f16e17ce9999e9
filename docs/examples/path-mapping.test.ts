import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { differentPath, samePath, targetWithPath } from './path-mapping.js';

/** What the upstream saw as the request target when `path` was sent, byte for byte, to the gateway. */
async function mapped(port: number, seen: Array<{ url: string }>, path: string): Promise<string> {
  const answer = await sendRaw(port, `GET ${path} HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n`);
  assert.ok(answer.startsWith('HTTP/1.1 200 '), `${path}: ${answer.split('\r\n')[0]}`);
  return seen.at(-1)!.url;
}

test('same path and different path: the mapping table of docs/path-mapping.md', async () => {
  const upstream = await startUpstream();
  const same = await serveRelay(samePath(upstream.url));
  const different = await serveRelay(differentPath(upstream.url));
  const table: Array<[string, string, string]> = [
    ['/auth/login', '/login', '/api/v1/login'],
    ['/auth', '/', '/api/v1'],
    ['/auth/', '/', '/api/v1/'],
    ['/auth?x=1', '/?x=1', '/api/v1?x=1'],
    ['/auth/login?next=%2F', '/login?next=%2F', '/api/v1/login?next=%2F'],
    ['/auth/files/a%20b.txt', '/files/a%20b.txt', '/api/v1/files/a%20b.txt'],
    ["/auth/search?q='x'&tag=a+b", "/search?q='x'&tag=a+b", "/api/v1/search?q='x'&tag=a+b"],
    ['/auth/login?', '/login', '/api/v1/login'],
  ];
  for (const [request, toSame, toDifferent] of table) {
    assert.is(await mapped(same.port, upstream.requests, request), toSame, `${request} with upstreamPrefix '/'`);
    assert.is(await mapped(different.port, upstream.requests, request), toDifferent, `${request} with upstreamPrefix '/api/v1'`);
  }
  assert.is((await fetchRaw(`${same.url}/authors`)).status, 404, '/authors is not under /auth');
  await same.close();
  await different.close();
  await upstream.close();
});

test("the target's own path comes first", async () => {
  const upstream = await startUpstream();
  const api = await serveRelay(targetWithPath(`${upstream.url}/base`));
  assert.is(await mapped(api.port, upstream.requests, '/api/users?page=2'), '/base/v2/users?page=2');
  await api.close();
  await upstream.close();
});

test('a request can never leave the prefix: 400 and the upstream never sees it', async () => {
  const upstream = await startUpstream();
  const auth = await serveRelay(differentPath(upstream.url));
  const refused = [
    '/auth/../admin', '/auth/%2e%2e/admin', '/auth/%252e%252e/admin', '/auth/..%2fadmin', '/auth/a/..%5c..%5cadmin',
    '/auth/..;/admin', '/auth/%c0%ae%c0%ae/x', '/auth/a%00b', '/auth//evil.example/x', '/auth/\\evil.example',
  ];
  for (const path of refused) {
    const answer = await sendRaw(auth.port, `GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
    assert.ok(answer.startsWith('HTTP/1.1 400 '), `${path}: ${answer.split('\r\n')[0]}`);
    assert.ok(answer.endsWith('400 Bad Request: the request path is not allowed (ERR_BAD_PATH)\n'), answer);
  }
  // An absolute-form target keeps the upstream origin: only its path is forwarded.
  const absolute = await sendRaw(auth.port, 'GET http://evil.example/auth/login HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.ok(absolute.startsWith('HTTP/1.1 200 '));
  assert.equal(upstream.requests.map((seen) => seen.url), ['/api/v1/login']);
  await auth.close();
  await upstream.close();
});

test.run();
