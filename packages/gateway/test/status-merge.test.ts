// mergeSnapshots: how the status of several workers becomes the whole gateway's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mergeSnapshots, type StatusSnapshot, type TargetStatus } from '../src/index.js';

function target(health: TargetStatus['health'], lastSeenAgo: number | null): TargetStatus {
  return { url: 'http://10.0.0.1:8080', health, lastStatus: health === 'healthy' ? 200 : null, lastError: health === 'unhealthy' ? 'ERR_UPSTREAM_UNREACHABLE' : null, lastSeenAgo };
}

function snapshot(pid: number, requests: number, users: TargetStatus): StatusSnapshot {
  return {
    pid,
    uptimeSeconds: pid,
    generation: 2,
    reloads: { succeeded: 1, failed: 0 },
    inFlight: 1,
    websocketSessions: 1,
    routes: [{ name: 'users', match: { path: '/users', host: null, methods: null }, targets: [users], requestsLastMinute: requests, errorsLastMinute: 1, inFlight: 1, websocketSessions: 1 }],
    workers: [{ pid, generation: 2, inFlight: 1, websocketSessions: 1, requestsLastMinute: requests }],
    partial: false,
  };
}

test('sums per route and per gateway; reloads are counted once', () => {
  const merged = mergeSnapshots([snapshot(11, 5, target('healthy', 10)), snapshot(12, 7, target('healthy', 20))], { pid: 12, asked: 2 });
  assert.is(merged.pid, 12);
  assert.is(merged.routes.length, 1);
  assert.is(merged.routes[0]!.requestsLastMinute, 12);
  assert.is(merged.routes[0]!.errorsLastMinute, 2);
  assert.is(merged.inFlight, 2);
  assert.is(merged.websocketSessions, 2);
  assert.equal(merged.reloads, { succeeded: 1, failed: 0 });
  assert.equal(merged.workers.map((worker) => worker.pid), [11, 12]);
  assert.is(merged.partial, false);
});

test('a target shows what the worker that saw it last saw', () => {
  const turnedBad = mergeSnapshots([snapshot(11, 1, target('healthy', 900)), snapshot(12, 1, target('unhealthy', 30))], { pid: 11, asked: 2 });
  assert.is(turnedBad.routes[0]!.targets[0]!.health, 'unhealthy');
  const recovered = mergeSnapshots([snapshot(11, 1, target('healthy', 5)), snapshot(12, 1, target('unhealthy', 30))], { pid: 11, asked: 2 });
  assert.is(recovered.routes[0]!.targets[0]!.health, 'healthy');
  const untried = mergeSnapshots([snapshot(11, 0, target('unknown', null)), snapshot(12, 1, target('unhealthy', 3000))], { pid: 11, asked: 2 });
  assert.is(untried.routes[0]!.targets[0]!.health, 'unhealthy', 'a worker that never tried knows least');
});

test('a worker that did not answer makes the figures partial', () => {
  assert.is(mergeSnapshots([snapshot(11, 1, target('healthy', 1))], { pid: 11, asked: 2 }).partial, true);
});

test.run();
