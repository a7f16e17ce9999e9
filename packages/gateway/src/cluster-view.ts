import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@relay/core';
import { checkApiOptions } from './api-options.js';
import { mergeSnapshots } from './status-merge.js';
import type { StatusSnapshot } from './status.js';

/**
 * What `/metrics` and the status page show with `--workers N`: the whole gateway, which only the
 * primary can see. A worker asks it (`relay:view`); for the status the primary asks every worker
 * for its snapshot (`relay:snapshot`) and merges them, for `/metrics` prom-client's
 * `AggregatorRegistry` gathers every worker's registry.
 */
export type ViewMessage =
  | { type: 'relay:view'; id: number; what: 'status' | 'metrics' }
  | { type: 'relay:view-result'; id: number; status?: StatusSnapshot; metrics?: string; error?: string }
  | { type: 'relay:snapshot'; id: number }
  | { type: 'relay:snapshot-result'; id: number; status: StatusSnapshot };

/** How a worker's endpoints get the whole gateway's figures. */
export interface GatewayView {
  status(): Promise<StatusSnapshot>;
  metrics(): Promise<string>;
}

/** How long a worker waits for the primary, and the primary for the workers' snapshots. */
const askTimeout = 5_000;
const snapshotTimeout = 2_000;

/**
 * A worker's view: each call is one IPC round trip to the primary, rejected after 5 s.
 *
 * @example
 * const view = workerView();
 * const snapshot = await view.status();
 */
export function workerView(): GatewayView {
  const pending = new Map<number, (message: ViewMessage & { type: 'relay:view-result' }) => void>();
  let nextId = 0;
  process.on('message', (message: ViewMessage) => {
    if (message?.type === 'relay:view-result') pending.get(message.id)?.(message);
  });
  function ask(what: 'status' | 'metrics'): Promise<ViewMessage & { type: 'relay:view-result' }> {
    return new Promise((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('the primary did not answer'));
      }, askTimeout);
      pending.set(id, (message) => {
        clearTimeout(timer);
        pending.delete(id);
        if (message.error !== undefined) reject(new Error(message.error));
        else resolve(message);
      });
      process.send!({ type: 'relay:view', id, what } satisfies ViewMessage);
    });
  }
  return {
    status: async () => (await ask('status')).status!,
    metrics: async () => (await ask('metrics')).metrics!,
  };
}

/**
 * A worker's side of the primary's snapshot requests: answers each with this process's status.
 *
 * @example
 * answerSnapshots(() => running.gateway.status());
 */
export function answerSnapshots(snapshot: () => StatusSnapshot): void {
  process.on('message', (message: ViewMessage) => {
    if (message?.type !== 'relay:snapshot' || !process.connected) return;
    process.send!({ type: 'relay:snapshot-result', id: message.id, status: snapshot() } satisfies ViewMessage);
  });
}

const clusterViewOptionNames: readonly string[] = ['logger', 'clusterMetrics'];

/**
 * The primary's side: answers the workers' `relay:view` requests. `clusterMetrics` is prom-client's
 * `AggregatorRegistry.clusterMetrics` (null when prom-client is not installed).
 *
 * @example
 * serveClusterView({ logger, clusterMetrics: () => new AggregatorRegistry().clusterMetrics() });
 */
export function serveClusterView(options: { logger: Logger; clusterMetrics: (() => Promise<string>) | null }): void {
  checkApiOptions(options, clusterViewOptionNames, 'serveClusterView');
  const collecting = new Map<number, Collecting>();
  let nextId = 0;
  cluster.on('message', (worker: Worker, message: ViewMessage) => {
    if (message?.type === 'relay:snapshot-result') collecting.get(message.id)?.add(message.status);
    else if (message?.type === 'relay:view') void answer(worker, message);
  });

  async function answer(worker: Worker, message: ViewMessage & { type: 'relay:view' }): Promise<void> {
    let reply: ViewMessage;
    try {
      reply = message.what === 'status' ? { type: 'relay:view-result', id: message.id, status: await collectStatus(worker) } : { type: 'relay:view-result', id: message.id, metrics: await metrics() };
    } catch (error) {
      options.logger.warn({ what: message.what, error: (error as Error).message }, 'could not gather the workers\' figures');
      reply = { type: 'relay:view-result', id: message.id, error: (error as Error).message };
    }
    if (worker.isConnected()) worker.send(reply);
  }

  function metrics(): Promise<string> {
    if (options.clusterMetrics === null) return Promise.reject(new Error('prom-client is not installed'));
    return options.clusterMetrics();
  }

  /** Asks every connected worker; merges the snapshots that arrive within the timeout. */
  async function collectStatus(asking: Worker): Promise<StatusSnapshot> {
    const id = ++nextId;
    const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && worker.isConnected());
    const entry = new Collecting(workers.length);
    collecting.set(id, entry);
    for (const worker of workers) worker.send({ type: 'relay:snapshot', id } satisfies ViewMessage);
    await entry.complete;
    collecting.delete(id);
    return mergeSnapshots(entry.snapshots, { pid: asking.process.pid ?? process.pid, asked: workers.length });
  }
}

/** The snapshots of one status request: complete when every worker answered, or at the timeout. */
class Collecting {
  readonly snapshots: StatusSnapshot[] = [];
  readonly complete: Promise<void>;
  private finish: () => void = () => {};

  constructor(private readonly expected: number) {
    this.complete = new Promise((resolve) => {
      const timer = setTimeout(resolve, snapshotTimeout);
      this.finish = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (expected === 0) this.finish();
  }

  add(snapshot: StatusSnapshot): void {
    this.snapshots.push(snapshot);
    if (this.snapshots.length === this.expected) this.finish();
  }
}
