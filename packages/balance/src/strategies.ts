import type { Member } from './member.js';
import type { Strategy } from './options.js';
import { fnv1a } from './member.js';

/** Picks one of `members` (never empty) for a request whose hash key is `key` (`null`: none). */
export type Pick = (members: readonly Member[], key: string | null) => Member;

/**
 * Smooth weighted round robin, as nginx does it: every member gains its weight, the richest is
 * chosen and pays the total. Weights 5:1:1 give a a b a c a a, never five a's in a row.
 *
 * @example
 * const member = roundRobin(members, null);
 */
export function roundRobin(members: readonly Member[]): Member {
  let total = 0;
  let best = members[0]!;
  for (const member of members) {
    member.current += member.weight;
    total += member.weight;
    if (member.current > best.current) best = member;
  }
  best.current -= total;
  return best;
}

/**
 * Least in-flight by the power of two choices: two members at random, the one with fewer
 * attempts in progress per unit of weight wins. Almost as good as scanning every member, and two
 * balancers (two relay processes) do not stampede onto the same idle one.
 *
 * @example
 * const member = leastRequest(members, null);
 */
export function leastRequest(members: readonly Member[]): Member {
  if (members.length === 1) return members[0]!;
  const first = Math.floor(Math.random() * members.length);
  let second = Math.floor(Math.random() * (members.length - 1));
  if (second >= first) second++;
  const a = members[first]!;
  const b = members[second]!;
  return (a.inFlight + 1) / a.weight <= (b.inFlight + 1) / b.weight ? a : b;
}

/**
 * Weighted rendezvous (highest random weight) hashing: every member scores the key, the highest
 * score wins. A member that joins takes only the keys it now wins (about 1/N of them); one that
 * leaves gives up only its own. Requests without a key go round robin.
 *
 * @example
 * const member = rendezvous(members, 'session-42');
 */
export function rendezvous(members: readonly Member[], key: string | null): Member {
  if (key === null) return roundRobin(members);
  const keyHash = fnv1a(key, 0x811c9dc5);
  let best = members[0]!;
  let bestScore = -Infinity;
  for (const member of members) {
    // u in (0, 1), uniform per (key, member); -w / ln(u) gives each member a share proportional to w.
    const u = (mix(keyHash ^ member.seed) + 0.5) / 4294967296;
    const score = -member.weight / Math.log(u);
    if (score > bestScore) {
      best = member;
      bestScore = score;
    }
  }
  return best;
}

/** murmur3's finaliser: FNV alone leaves related inputs' hashes related. */
function mix(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Each strategy's pick, for `balance()` and `targetPicker()`. */
export const strategyPicks: Readonly<Record<Strategy, Pick>> = { 'round-robin': roundRobin, 'least-request': leastRequest, hash: rendezvous };
