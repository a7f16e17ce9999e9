// Issue 23: balance()'s pick as a plain function (targetPicker), giving the stage's choices on the same inputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { serveRelay, type Upstream } from '@relay/testkit';
import { balance, targetPicker, type Strategy } from '../src/index.js';
import { load, named } from './helpers.js';

/** The upstream names the stage sends `count` requests to, one at a time (`keyOf(i)`: the x-user header). */
async function stageOrder(ups: Upstream[], weights: number[], strategy: Strategy, count: number, keyOf?: (index: number) => string): Promise<string[]> {
  const targets = ups.map((up, index) => ({ url: up.url, weight: weights[index]! }));
  const pool = balance(strategy === 'hash' ? { targets, strategy, hashKey: { header: 'x-user' } } : { targets, strategy });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [pool] }));
  const hits = await load(served.url, count, 1, keyOf === undefined ? undefined : (index) => ({ 'x-user': keyOf(index) }));
  await served.close();
  return hits.map((hit) => hit.upstream);
}

test('one table run both ways: round robin (weights 3:1:2) and hashing on 40 keys pick as the stage does', async () => {
  const names = ['a', 'b', 'c'];
  const ups = await Promise.all(names.map((name) => named(name)));
  const nameOf = new Map(ups.map((up, index) => [new URL(up.url).origin, names[index]!]));
  const weights = [3, 1, 2];
  const keyOf = (index: number): string => `user-${index * 7}`;
  for (const [strategy, keys] of [['round-robin', undefined], ['hash', keyOf]] as const) {
    const viaStage = await stageOrder(ups, weights, strategy, 40, keys);
    const picker = targetPicker({ targets: ups.map((up, index) => ({ url: up.url, weight: weights[index]! })), strategy });
    const viaPicker = Array.from({ length: 40 }, (_, index) => {
      const picked = picker.pick(keys === undefined ? null : keys(index));
      picked.release();
      return nameOf.get(picked.url)!;
    });
    assert.equal(viaPicker, viaStage, strategy);
  }
  await Promise.all(ups.map((up) => up.close()));
});

test('least-request counts picks in flight until release(): a held target is passed over', () => {
  const picker = targetPicker({ targets: ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'], strategy: 'least-request' });
  const held = picker.pick();
  for (let index = 0; index < 20; index++) {
    const next = picker.pick();
    assert.is.not(next.url, held.url, 'two targets: the one with a request in flight is never chosen');
    next.release();
  }
  held.release();
  held.release(); // twice is once
  const seen = new Set(Array.from({ length: 40 }, () => picker.pick()).map((picked) => picked.url));
  assert.is(seen.size, 2);
});

test('targetPicker checks its options as balance() does, naming the option', () => {
  const message = (run: () => unknown): string => {
    try {
      run();
    } catch (error) {
      return (error as Error).message;
    }
    return 'no error';
  };
  assert.match(message(() => targetPicker({ targets: ['http://a:1'], strategey: 'hash' } as never)), /strategy/);
  assert.match(message(() => targetPicker({ targets: ['http://a:1'], strategy: 'random' as never })), /strategy must be one of/);
  assert.match(message(() => targetPicker({ targets: [] })), /at least one target/);
  assert.match(message(() => targetPicker({ targets: [{ dns: 'http://api.internal:8000' }] })), /DNS targets/);
  assert.match(message(() => targetPicker({ targets: ['ftp://a'] })), /targets\[0\]/);
  assert.match(message(() => targetPicker({ targets: ['http://a:1'] }).pick(42 as never)), /pick\(key\)/);
});

test.run();
