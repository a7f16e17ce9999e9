import type { Relay } from '@relay/core';

/**
 * Throws a TypeError naming `where` when `relay` is not a relay made by `createRelay`.
 *
 * @example
 * assertRelay(options.relay, 'relayPlugin: relay');
 */
export function assertRelay(relay: unknown, where: string): asserts relay is Relay {
  const candidate = relay as Partial<Relay> | null;
  if (candidate === null || typeof candidate !== 'object' || typeof candidate.dispatch !== 'function' || typeof candidate.dispatchUpgrade !== 'function') {
    throw new TypeError(`${where} must be a relay made by createRelay() from @relay/core`);
  }
}
