import { RelayError, type ClientInfo } from '@relay/core';

/** Puts a waiter in: it calls `done` when what it waits for comes, and returns what takes it out again. */
export type Enter = (done: () => void) => () => void;

/**
 * Waits, on behalf of a client request, for what `enter` waits for, at most `maxWait` ms (0: no
 * bound): `true` when it came, `false` when the time ran out. An aborted request rejects with the
 * abort's own reason: a retry deadline (504 ERR_DEADLINE) or a shutdown is answered; a client
 * that left gets ERR_CLIENT_ABORTED, for which core writes no answer. `waitingFor` ends that
 * error's message ("the client left while waiting for …").
 *
 * @example
 * const served = await waitWhileClientStays(request.client, 10_000, 'a free upstream slot', (done) => queue.add(done));
 */
export function waitWhileClientStays(client: ClientInfo, maxWait: number, waitingFor: string, enter: Enter): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const reason = (): RelayError => client.abortReason ?? new RelayError('ERR_CLIENT_ABORTED', `the client left while waiting for ${waitingFor}`);
    if (client.aborted) {
      reject(reason());
      return;
    }
    const signal = client.signal;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', left);
      return true;
    };
    const came = (): void => {
      if (settle()) resolve(true);
    };
    const left = (): void => {
      if (!settle()) return;
      leave();
      reject(reason());
    };
    const expired = (): void => {
      if (!settle()) return;
      leave();
      resolve(false);
    };
    const leave = enter(came);
    if (settled) return;
    signal.addEventListener('abort', left, { once: true });
    if (maxWait > 0) timer = setTimeout(expired, maxWait);
  });
}
