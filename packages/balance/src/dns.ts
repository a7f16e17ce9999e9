import { lookup } from 'node:dns/promises';
import type { Logger } from '@relay/core';
import { Member } from './member.js';
import { addressTarget, originTarget, type DnsEntry } from './targets.js';

/** A name to its addresses. */
export type Resolve = (hostname: string) => Promise<readonly string[]>;

/** Every A and AAAA record of a name, as the system resolver (getaddrinfo, /etc/hosts included) gives them. */
export async function lookupAll(hostname: string): Promise<readonly string[]> {
  const records = await lookup(hostname, { all: true, verbatim: true });
  return records.map((record) => record.address);
}

/**
 * One `{ dns }` target: its name resolved on `start` and every `interval`, each address a member.
 * A failed lookup keeps the previous addresses (a resolver hiccup must not empty the pool).
 *
 * @example
 * const watch = new DnsWatch(entry, lookupAll, () => pool.rebuild(), logger);
 * await watch.start();
 */
export class DnsWatch {
  members: Member[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    public entry: DnsEntry,
    private readonly resolve: Resolve,
    private readonly onChange: () => void,
    private readonly logger: () => Logger,
  ) {}

  start(): Promise<void> {
    if (this.timer !== null) return Promise.resolve();
    this.timer = setInterval(() => void this.refresh(), this.entry.interval);
    this.timer.unref();
    return this.refresh();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Members for the addresses another pool found for the same name (`adopt`): they serve until this
   * watch's first lookup, which keeps those it finds again (with their state), and stay if it fails,
   * as a failed lookup keeps the previous addresses. Only before any lookup of this watch.
   */
  seed(origins: readonly string[]): boolean {
    if (this.members.length > 0 || origins.length === 0) return false;
    this.members = origins.map((origin) => new Member(origin, this.entry.weight, originTarget(this.entry, origin), this.entry.spec));
    return true;
  }

  /** Resolves the name again and replaces the members whose address changed. */
  async refresh(): Promise<void> {
    let addresses: readonly string[];
    try {
      addresses = await this.resolve(this.entry.hostname);
    } catch (error) {
      this.logger().warn({ name: this.entry.hostname, error: (error as Error).message }, 'balance: DNS lookup failed, keeping the previous addresses');
      return;
    }
    if (this.timer === null) return;
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
