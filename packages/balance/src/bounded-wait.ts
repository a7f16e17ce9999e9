import { RelayError, type ProxyRequest } from '@relay/core';

/** Puts a waiter in: it calls `done` when what it waits for comes, and returns what takes it out again. */
export type Enter = (done: () => void) => () => void;

/** What `waitWhileClientStays` waits for, and how long. */
export interface BoundedWait {
  /** The longest wait in ms; 0: no bound. */
  readonly maxWait: number;
  /** Ends the error's message when the client leaves: "the client left while waiting for …". */
  readonly waitingFor: string;
  readonly enter: Enter;
}

/**
 * Waits, on behalf of the attempt `request`, for what `wait.enter` waits for, at most `wait.maxWait`
 * ms: `true` when it came, `false` when the time ran out. The wait is the attempt for now (the
 * client's abort handler, as a transport's is): a cut of the attempt's bound (`request.bound`, a
 * retry deadline's 504 ERR_DEADLINE) or a shutdown rejects with its own reason, and takes the
 * waiter out of the queue at once; a client that left gets ERR_CLIENT_ABORTED, for which core
 * writes no answer.
 *
 * @example
 * const served = await waitWhileClientStays(request, { maxWait: 10_000, waitingFor: 'a free upstream slot', enter: (done) => queue.add(done) });
 */
export function waitWhileClientStays(request: ProxyRequest, wait: BoundedWait): Promise<boolean> {
  const client = request.client;
  return new Promise<boolean>((resolve, reject) => {
    const clientLeft = (): RelayError => new RelayError('ERR_CLIENT_ABORTED', `the client left while waiting for ${wait.waitingFor}`);
    if (client.aborted) {
      reject(client.abortReason ?? clientLeft());
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      return true;
    };
    const came = (): void => {
      if (!settle()) return;
      client.setAbortHandler(null);
      resolve(true);
    };
    const cut = (reason: RelayError): void => {
      if (!settle()) return;
      leave();
      reject(reason.code === 'ERR_CLIENT_ABORTED' ? clientLeft() : reason);
    };
    const expired = (): void => {
      if (!settle()) return;
      client.setAbortHandler(null);
      leave();
      resolve(false);
    };
    const leave = wait.enter(came);
    if (settled) return;
    // Registered after `enter`: an attempt whose bound was cut already is cut at once.
    client.setAbortHandler({ request, onClientAbort: cut });
    if (!settled && wait.maxWait > 0) timer = setTimeout(expired, wait.maxWait);
  });
}
