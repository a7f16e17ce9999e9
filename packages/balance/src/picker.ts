import { Member } from './member.js';
import { checkObject, type Strategy, type TargetSpec } from './options.js';
import { strategyPicks } from './strategies.js';
import { parseSpecs } from './targets.js';

/** Options of `targetPicker()`: the targets and the strategy of `balance()`. */
export interface TargetPickerOptions {
  /** Static targets as `balance()` takes them (`'http://10.0.0.1:8000'` or `{ url, weight }`); DNS targets are the stage's. */
  targets: readonly TargetSpec[];
  /** `round-robin` (smooth, weighted), `least-request` (power of two choices, weighted by load when weights differ) or `hash` (weighted rendezvous). Default `round-robin`. */
  strategy?: Strategy;
}

/** One pick: the target's origin, and `release()` once its request is over (least-request counts requests in flight). */
export interface PickedTarget {
  readonly url: string;
  release(): void;
}

/** `balance()`'s choice of target as a plain function, for a proxy or client that is not a relay. */
export interface TargetPicker {
  /** Picks a target; `key` is the hash key (`hash`: the same key, the same target while the targets stay). */
  pick(key?: string | null): PickedTarget;
}

const optionNames: readonly string[] = ['targets', 'strategy'];

/**
 * The balancing pick of `balance()` without a relay: the same strategies over the same members
 * (smooth weighted round robin, least in-flight by two random choices, weighted rendezvous
 * hashing), for http-proxy-middleware's `router`, a fetch client or an edge function. Health
 * checks, ejection and circuits are the stage's, around a relay's attempts.
 *
 * @example
 * const picker = targetPicker({ targets: ['http://10.0.0.1:8000', { url: 'http://10.0.0.2:8000', weight: 2 }] });
 * const { url, release } = picker.pick();
 * try { await fetch(new URL('/users', url)); } finally { release(); }
 */
export function targetPicker(options: TargetPickerOptions): TargetPicker {
  checkObject(options, optionNames, 'targetPicker');
  const strategy = options.strategy ?? 'round-robin';
  if (!Object.hasOwn(strategyPicks, strategy)) throw new TypeError(`targetPicker: strategy must be one of ${Object.keys(strategyPicks).join(', ')}, got ${String(strategy)}`);
  const pick = strategyPicks[strategy];
  const parsed = parseSpecs(options.targets);
  if (parsed.dns.length > 0) throw new TypeError('targetPicker: targets must be URLs; DNS targets are resolved by balance() only');
  if (parsed.statics.length === 0) throw new TypeError('targetPicker: targets must name at least one target');
  const members = parsed.statics.map((entry) => new Member(entry.url, entry.weight, entry.target, null));
  return {
    pick(key: string | null = null): PickedTarget {
      if (key !== null && typeof key !== 'string') throw new TypeError('targetPicker: pick(key) takes a string or null');
      return picked(pick(members, key));
    },
  };
}

function picked(member: Member): PickedTarget {
  member.inFlight++;
  let released = false;
  return {
    url: member.url,
    release(): void {
      if (released) return;
      released = true;
      member.inFlight--;
    },
  };
}
