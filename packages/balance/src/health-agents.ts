import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { TlsOptions } from '@relay/core';
import type { Member } from './member.js';

/**
 * The keep-alive agents of HTTP/1.1 health checks: one per member, so the connection to a target
 * that left the pool (setTargets, a DNS change) is closed with its agent, rather than kept idle by
 * an agent shared with the targets that stay. `https:` members connect with the relay's TLS settings.
 *
 * @example
 * const agents = new CheckAgents(tls);
 * httpRequest({ …, agent: agents.get(member) });
 * agents.keepOnly(pool.members);
 */
export class CheckAgents {
  private readonly agents = new Map<Member, HttpAgent>();

  constructor(private tls: Readonly<TlsOptions>) {}

  /** `member`'s agent: one connection, kept alive between checks. */
  get(member: Member): HttpAgent {
    let agent = this.agents.get(member);
    if (agent === undefined) {
      agent = member.target.protocol === 'https:' ? new HttpsAgent({ ...this.tls, keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
      this.agents.set(member, agent);
    }
    return agent;
  }

  /** New TLS settings: the connections of `https:` members, made with the old ones, are closed. */
  useTls(tls: Readonly<TlsOptions>): void {
    this.tls = tls;
    for (const member of [...this.agents.keys()]) if (member.target.protocol === 'https:') this.close(member);
  }

  /** Closes the connections of targets no longer in the pool. */
  keepOnly(members: readonly Member[]): void {
    if (this.agents.size === 0) return;
    const kept = new Set(members);
    for (const member of [...this.agents.keys()]) if (!kept.has(member)) this.close(member);
  }

  closeAll(): void {
    for (const member of [...this.agents.keys()]) this.close(member);
  }

  private close(member: Member): void {
    this.agents.get(member)?.destroy();
    this.agents.delete(member);
  }
}
