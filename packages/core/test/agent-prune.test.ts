// The HTTP/1 transports' per-target keep-alive pools (request.target, as behind @relay/balance or
// DNS targets) against real upstreams: a pool whose sockets all closed after idleTimeout is
// forgotten, so targets that come and go do not pile up; a later request makes a new pool; a
// pool with a request in flight is kept.
import { Agent as HttpAgent, get } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { Agents } from '../src/transport/agent.js';
import { createRelay, httpTransport, parseTarget, type Stage, type Target, type Transport } from '../src/index.js';
import type { BoundTransport } from '../src/types.js';

const test = suite('per-target agents are pruned');

const closers: Array<() => Promise<void>> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

/** An upstream answering `ok` (after 1 s for /slow), counting the connections it accepted. */
async function countingUpstream(): Promise<Upstream & { connections: () => number }> {
  const upstream = await startUpstream((req, res) => {
    const answer = () => res.end('ok');
    if (req.url?.startsWith('/slow')) setTimeout(answer, 1000);
    else answer();
  });
  let connections = 0;
  upstream.server.on('connection', () => connections++);
  closers.push(() => upstream.close());
  return Object.assign(upstream, { connections: () => connections });
}

/** The transport, keeping its binding for a look at the per-target pools. */
function watched(inner: Transport): { transport: Transport; otherTargets: () => number } {
  let bound: BoundTransport | null = null;
  const transport: Transport = { ...inner, bind: (config) => (bound = inner.bind(config)) };
  return { transport, otherTargets: () => (bound as unknown as { agents: Agents }).agents.otherTargets };
}

/** Sends every request to `current.target` (as a balance pool or a DNS lookup chooses); `null`: the relay's own. */
function chosen(current: { target: Target | null }): Stage {
  return {
    name: 'chosen',
    wrap: (next) =>
      function chosen(request) {
        return next(current.target === null ? request : { ...request, target: current.target });
      },
  };
}

async function relayTo(url: string, transport: Transport, stages: Stage[]) {
  const served = await serveRelay(createRelay({ targetBaseUrl: url, transport, stages }));
  closers.push(() => served.close());
  return served;
}

for (const [name, make] of [['http', httpTransport], ['got', gotTransport]] as const) {
  test(`${name}: targets that come and go (DNS churn): idle pools are forgotten; a later request makes a new one`, async () => {
    const main = await countingUpstream();
    const upstreams = await Promise.all(Array.from({ length: 5 }, () => countingUpstream()));
    const current = { target: parseTarget(upstreams[0]!.url) };
    const { transport, otherTargets } = watched(make({ idleTimeout: 200 }));
    const relay = await relayTo(main.url, transport, [chosen(current)]);
    for (const upstream of upstreams) {
      current.target = parseTarget(upstream.url);
      assert.is((await fetchRaw(`${relay.url}/x`)).text, 'ok');
    }
    assert.is(otherTargets(), 5);
    assert.ok(await waitFor(() => otherTargets() === 0, 3000), `targets kept: ${otherTargets()}`);
    current.target = parseTarget(upstreams[2]!.url);
    assert.is((await fetchRaw(`${relay.url}/again`)).text, 'ok');
    assert.is(otherTargets(), 1);
    assert.is(upstreams[2]!.connections(), 2, 'the forgotten pool’s connection closed; a new pool opened another');
  });

  test(`${name}: a pool with a request in flight past idleTimeout is kept (its connection is reused after)`, async () => {
    const main = await countingUpstream();
    const other = await countingUpstream();
    const { transport, otherTargets } = watched(make({ idleTimeout: 200 }));
    const relay = await relayTo(main.url, transport, [chosen({ target: parseTarget(other.url) })]);
    const slow = fetchRaw(`${relay.url}/slow`);
    assert.ok(await waitFor(() => otherTargets() === 1), 'the slow request took a pool');
    assert.ok(!(await waitFor(() => otherTargets() === 0, 800)), 'the busy pool stayed');
    assert.is((await slow).text, 'ok');
    assert.is((await fetchRaw(`${relay.url}/quick`)).text, 'ok');
    assert.is(other.connections(), 1, 'one kept-alive connection: the same pool served both');
    assert.ok(await waitFor(() => otherTargets() === 0, 3000), `targets kept: ${otherTargets()}`);
  });
}

test('the relay’s own target is never forgotten: its pool outlives the sweep that forgets the others', async () => {
  const main = await countingUpstream();
  const other = await countingUpstream();
  const current: { target: Target | null } = { target: parseTarget(other.url) };
  const { transport, otherTargets } = watched(httpTransport({ idleTimeout: 200 }));
  const relay = await relayTo(main.url, transport, [chosen(current)]);
  assert.is((await fetchRaw(`${relay.url}/b`)).text, 'ok');
  current.target = null;
  const slow = fetchRaw(`${relay.url}/slow`);
  assert.ok(await waitFor(() => otherTargets() === 0, 3000), `targets kept: ${otherTargets()}`);
  assert.is((await slow).text, 'ok');
  assert.is((await fetchRaw(`${relay.url}/a`)).text, 'ok');
  assert.is(main.connections(), 1, 'the relay target’s pool served both on one connection');
  assert.is(otherTargets(), 0);
});

test('an attempt racing the removal still works: the forgotten agent opens a new socket, the next attempt gets a new pool', async () => {
  const main = await countingUpstream();
  const other = await countingUpstream();
  const target = parseTarget(other.url);
  const agents = new Agents(new HttpAgent({ keepAlive: true }), parseTarget(main.url), () => new HttpAgent({ keepAlive: true, timeout: 200 }));
  const taken = agents.for(target);
  // Two sweeps: the first clears the "handed out" mark, the second forgets the (empty) pool.
  const sweep = () => (agents as unknown as { sweep(): void }).sweep();
  sweep();
  sweep();
  assert.is(agents.otherTargets, 0);
  const status = await new Promise<number | undefined>((resolve, reject) => {
    get({ host: '127.0.0.1', port: other.port, path: '/late', agent: taken }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    }).on('error', reject);
  });
  assert.is(status, 200);
  assert.is.not(agents.for(target), taken);
  assert.is(agents.otherTargets, 1);
  agents.destroy();
  taken.destroy();
});

test.run();
