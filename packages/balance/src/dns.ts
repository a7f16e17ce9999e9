import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '@relay/core';
import { Member } from './member.js';
import { addressTarget, originTarget, type DnsEntry } from './targets.js';

/** A name to its addresses. */
export type Resolve = (hostname: string) => Promise<readonly string[]>;

/**
 * The longest a lookup may take, in ms; one that takes longer is a failed lookup. The system
 * resolver gives up after its own timeouts (glibc: 5 s per server and try), a custom `resolve` may
 * never settle: the first request of a pool waits for the first lookups, and must not wait forever.
 */
export const lookupTimeout = 10_000;

/** Every A and AAAA record of a name, as the system resolver (getaddrinfo, /etc/hosts included) gives them. */
export async function lookupAll(hostname: string): Promise<readonly string[]> {
  const records = await lookup(hostname, { all: true, verbatim: true });
  return records.map((record) => record.address);
}

/**
 * One `{ dns }` target: its name resolved on `start` and every `interval`, each address a member.
 * A failed lookup keeps the previous addresses (a resolver hiccup must not empty the pool); an
 * answer that is not a list of IP addresses (a custom `resolve`), or none within `timeout` ms
 * (`lookupTimeout` by default), is a failed lookup.
 *
 * @example
 * const watch = new DnsWatch(entry, lookupAll, () => pool.rebuild(), logger);
 * await watch.start();
 */
export class DnsWatch {
  members: Member[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** The lookup `start` began; settled once the name was looked up (or the lookup failed). */
  private first: Promise<void> | null = null;
  /** A lookup has ended (found addresses or failed), or another pool's addresses were `seed`ed. */
  private known = false;

  constructor(
    private current: DnsEntry,
    private readonly resolve: Resolve,
    private readonly onChange: () => void,
    private readonly logger: () => Logger,
    private readonly timeout = lookupTimeout,
  ) {}

  get entry(): DnsEntry {
    return this.current;
  }

  /** Whether the watch has addresses to offer, or knows it has none: a pool may switch to it. */
  get ready(): boolean {
    return this.known;
  }

  /** Looks the name up now and every `interval`; resolves when the first lookup ended (never rejects). */
  start(): Promise<void> {
    if (this.timer !== null) return this.first ?? Promise.resolve();
    this.arm();
    this.first = this.refresh();
    return this.first;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * The same name listed again by `setTargets`: a new weight holds for its addresses at once (as a
   * URL target's does), a new interval from now (not from the next lookup, which the old one may put
   * off for hours).
   */
  update(entry: DnsEntry): void {
    const previous = this.current;
    this.current = entry;
    for (const member of this.members) member.weight = entry.weight;
    if (this.timer !== null && entry.interval !== previous.interval) {
      clearInterval(this.timer);
      this.arm();
    }
  }

  private arm(): void {
    // The timer's lookup must never reject: an unhandled rejection ends the process.
    this.timer = setInterval(() => void this.refresh().catch((error: unknown) => this.failed(error)), this.current.interval);
    this.timer.unref();
  }

  private failed(error: unknown): void {
    this.logger().warn({ name: this.current.hostname, error: (error as Error | null)?.message ?? String(error) }, 'balance: DNS lookup failed, keeping the previous addresses');
  }

  /**
   * Members for the addresses another pool found for the same name (`adopt`): they serve until this
   * watch's first lookup, which keeps those it finds again (with their state), and stay if it fails,
   * as a failed lookup keeps the previous addresses. Only before any lookup of this watch.
   */
  seed(origins: readonly string[]): boolean {
    if (this.members.length > 0 || origins.length === 0) return false;
    this.members = origins.map((origin) => new Member(origin, this.entry.weight, originTarget(this.entry, origin), this.entry.spec));
    this.known = true;
    return true;
  }

  /** Resolves the name again and replaces the members whose address changed. */
  async refresh(): Promise<void> {
    let addresses: readonly string[];
    try {
      addresses = checkAddresses(await within(this.resolve(this.entry.hostname), this.timeout));
    } catch (error) {
      this.known = true;
      this.failed(error);
      return;
    }
    if (this.timer === null) return;
    this.known = true;
    const previous = new Map(this.members.map((member) => [member.url, member]));
    const next = [...new Set(addresses)].map((address) => {
      const target = addressTarget(this.entry, address);
      const member = previous.get(target.origin) ?? new Member(target.origin, this.entry.weight, target, this.entry.spec);
      member.weight = this.entry.weight;
      return member;
    });
    const changed = next.length !== this.members.length || next.some((member, index) => member !== this.members[index]);
    this.members = next;
    if (changed) this.onChange();
  }
}

/** `lookup`'s answer, or a rejection once `ms` passed without one (a late answer is dropped). */
function within<T>(lookup: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    // A lookup never keeps a process alive: a relay's server does.
    timer.unref();
  });
  return Promise.race([lookup, expired]).finally(() => clearTimeout(timer));
}

/** The resolver's answer, if it is a list of IP addresses; else a TypeError naming what it gave. */
function checkAddresses(answer: unknown): readonly string[] {
  if (!Array.isArray(answer)) throw new TypeError(`resolve answered ${typeof answer}, not a list of addresses`);
  for (const address of answer) {
    if (typeof address !== 'string' || isIP(address) === 0) throw new TypeError(`resolve answered ${JSON.stringify(address)}, not an IP address`);
  }
  return answer as readonly string[];
}
