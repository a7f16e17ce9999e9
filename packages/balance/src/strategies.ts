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
 * Least in-flight, as Envoy's least-request does it. Equal weights: the power of two choices, two
 * members at random and the one with fewer attempts in progress wins (almost as good as scanning
 * every member, and two balancers, two relay processes, do not stampede onto the same idle one).
 * Unequal weights: smooth weighted round robin over `weight / (inFlight + 1)`, so with nothing in
 * flight the split is the weights (two random picks would ignore them: 1:1:1:1:10 gave the heavy
 * member 40 %, not 71 %), and a busy member's share shrinks with its load. nginx's `least_conn`
 * is weighted the same way, ties going weighted round robin.
 *
 * @example
 * const member = leastRequest(members, null);
 */
export function leastRequest(members: readonly Member[]): Member {
  if (members.length === 1) return members[0]!;
  return sameWeights(members) ? twoChoices(members) : weightedLeast(members);
}

function sameWeights(members: readonly Member[]): boolean {
  const weight = members[0]!.weight;
  for (const member of members) if (member.weight !== weight) return false;
  return true;
}

function twoChoices(members: readonly Member[]): Member {
  const first = Math.floor(Math.random() * members.length);
  let second = Math.floor(Math.random() * (members.length - 1));
  if (second >= first) second++;
  const a = members[first]!;
  const b = members[second]!;
  return a.inFlight <= b.inFlight ? a : b;
}

/** `roundRobin` with Envoy's dynamic weight (its `active_request_bias` at the default 1). */
function weightedLeast(members: readonly Member[]): Member {
  let total = 0;
  let best = members[0]!;
  for (const member of members) {
    const weight = member.weight / (member.inFlight + 1);
    member.current += weight;
    total += weight;
    if (member.current > best.current) best = member;
  }
  best.current -= total;
  return best;
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
