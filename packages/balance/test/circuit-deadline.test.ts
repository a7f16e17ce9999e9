import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { request } from 'node:http';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { balance } from '../src/index.js';

interface Answer {
  status: number;
  body: string;
  upstream: string;
  ms: number;
}

/** One GET; status 0 when no answer came within `timeoutMs` (the request is then destroyed). */
function get(url: string, timeoutMs: number): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve) => {
    const req = request(url, { agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ status: 0, body: '', upstream: '', ms: Date.now() - started });
    }, timeoutMs);
    req.on('error', () => {});
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), upstream: String(res.headers['x-upstream'] ?? ''), ms: Date.now() - started });
      });
    });
    req.end();
  });
}

/** An upstream that answers its name after `delayMs`. */
function slow(name: string, delayMs: number): Promise<Upstream> {
  return startUpstream((_req, res) => {
    setTimeout(() => {
      res.setHeader('x-upstream', name);
      res.end(name);
    }, delayMs);
  });
}

test('circuit + retry deadline: an attempt waiting for a slot when the deadline passes gets 504 ERR_DEADLINE', async () => {
  const up = await slow('a', 2_500);
  const pool = balance({ targets: [up.url], circuit: { maxRequests: 1, maxPending: 5 } });
  // The same pool behind two relays (documented: shared by every relay it is built into).
  const plain = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool] }));
  const bounded = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [retry({ maxRetries: 1, deadline: 400 }), pool] }));
  try {
    const holder = get(plain.url + '/hold', 5_000); // takes the only slot for 2.5 s
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Wait past the holder's end too: whatever the waiting client gets, it gets it by 4 s.
    const waiting = await get(bounded.url + '/wait', 4_000);
    assert.is((await holder).status, 200);
    assert.is(waiting.status, 504, `the deadline (400 ms) passed while waiting for a slot: expected 504 ERR_DEADLINE, got ${waiting.status === 0 ? 'no answer in 4 s' : waiting.status}`);
    assert.match(waiting.body, /ERR_DEADLINE/);
    assert.ok(waiting.ms < 2_000, `answered after ${waiting.ms} ms`);
  } finally {
    pool.stop();
    await plain.close();
    await bounded.close();
    await up.close();
  }
});

test.run();
