import type { Member } from './member.js';
import type { OutlierRules } from './options.js';

/**
 * Counts one failure of `member` and says whether it is now ejected: after
 * `consecutiveFailures` in a row, unless `maxEjectionPercent` of `members` are out already (one
 * target may always be). The n-th ejection lasts n base times, capped; the count starts over once
 * the target has stayed in for a whole `maxEjectionTime`. A failure of an attempt that was still in
 * flight when its target was ejected is not counted: the ejection has answered it, and a count
 * carried past the return would eject the target again at its first failure back.
 *
 * @example
 * if (countFailure(member, members, rules, Date.now())) announce(member, 'ejected');
 */
export function countFailure(member: Member, members: readonly Member[], rules: OutlierRules, now: number): boolean {
  if (member.ejected(now)) return false;
  member.failures++;
  if (member.failures < rules.consecutiveFailures) return false;
  if (ejectedCount(members, now) >= ejectionCap(members.length, rules.maxEjectionPercent)) return false;
  if (now - member.lastEjection > rules.maxEjectionTime + member.ejections * rules.baseEjectionTime) member.ejections = 0;
  member.ejections++;
  member.failures = 0;
  member.lastEjection = now;
  member.ejectedUntil = now + Math.min(rules.baseEjectionTime * member.ejections, rules.maxEjectionTime);
  return true;
}

/** How many targets may be out at once: `percent` of `total`, at least one unless `percent` is 0 (Envoy's rule). */
export function ejectionCap(total: number, percent: number): number {
  if (percent === 0) return 0;
  return Math.max(1, Math.floor((total * percent) / 100));
}

function ejectedCount(members: readonly Member[], now: number): number {
  let count = 0;
  for (const member of members) if (member.ejected(now)) count++;
  return count;
}
