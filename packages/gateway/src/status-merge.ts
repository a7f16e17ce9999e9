import type { RouteStatus, StatusSnapshot, TargetStatus } from './status.js';

/**
 * The status of the whole gateway from the snapshots of its workers: requests, errors, in-flight
 * requests and sessions are summed per route; a target shows what the worker that saw it last
 * saw (its latest attempt decides, as in one process), a pool's target out if out for any worker;
 * `pid` is the worker that answered.
 * `partial` when some worker did not answer in time.
 *
 * @example
 * mergeSnapshots([first, second], { pid: process.pid, asked: 2 });
 */
export function mergeSnapshots(snapshots: StatusSnapshot[], options: { pid: number; asked: number }): StatusSnapshot {
  const routes = new Map<string, RouteStatus>();
  for (const snapshot of snapshots) {
    for (const route of snapshot.routes) {
      const seen = routes.get(route.name);
      routes.set(route.name, seen === undefined ? { ...route, targets: [...route.targets] } : mergeRoute(seen, route));
    }
  }
  return {
    pid: options.pid,
    uptimeSeconds: Math.max(0, ...snapshots.map((snapshot) => snapshot.uptimeSeconds)),
    generation: Math.max(0, ...snapshots.map((snapshot) => snapshot.generation)),
    reloads: {
      succeeded: Math.max(0, ...snapshots.map((snapshot) => snapshot.reloads.succeeded)),
      failed: Math.max(0, ...snapshots.map((snapshot) => snapshot.reloads.failed)),
    },
    inFlight: sum(snapshots, (snapshot) => snapshot.inFlight),
    websocketSessions: sum(snapshots, (snapshot) => snapshot.websocketSessions),
    routes: [...routes.values()],
    workers: snapshots.flatMap((snapshot) => snapshot.workers).sort((a, b) => a.pid - b.pid),
    partial: snapshots.length < options.asked || snapshots.some((snapshot) => snapshot.partial),
  };
}

function mergeRoute(into: RouteStatus, route: RouteStatus): RouteStatus {
  const targets = [...into.targets];
  for (const target of route.targets) {
    const index = targets.findIndex((known) => known.url === target.url);
    if (index === -1) targets.push(target);
    else targets[index] = latest(targets[index]!, target);
  }
  return {
    ...into,
    targets,
    requestsLastMinute: into.requestsLastMinute + route.requestsLastMinute,
    errorsLastMinute: into.errorsLastMinute + route.errorsLastMinute,
    inFlight: into.inFlight + route.inFlight,
    websocketSessions: into.websocketSessions + route.websocketSessions,
  };
}

/**
 * The more recent view of one target: a worker that never sent it anything knows least. A pool's
 * target (each worker checks it on its own) is out when it is out for some worker, as
 * `relay_gateway_target_up` is 1 only when up for every worker; its attempts are summed.
 */
function latest(a: TargetStatus, b: TargetStatus): TargetStatus {
  if (a.inFlight !== undefined && b.inFlight !== undefined) {
    return { ...a, health: a.health === 'healthy' ? b.health : a.health, ejected: a.ejected === true || b.ejected === true, inFlight: a.inFlight + b.inFlight };
  }
  if (b.lastSeenAgo === null) return a;
  if (a.lastSeenAgo === null) return b;
  return b.lastSeenAgo < a.lastSeenAgo ? b : a;
}

function sum<T>(items: T[], value: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += value(item);
  return total;
}
