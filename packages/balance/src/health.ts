import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TlsOptions } from '@relay/core';
import { CheckAgents } from './health-agents.js';
import { Http2Checks, type CheckStatus } from './health-h2.js';
import type { Member } from './member.js';
import type { HealthRules } from './options.js';

const noTls: Readonly<TlsOptions> = Object.freeze({});

/** What the checker reports: a member turned healthy (`true`) or unhealthy (`false`). */
export type HealthChange = (member: Member, healthy: boolean) => void;

/**
 * Active health checks: every `interval`, one GET of `path` on every member, through its own
 * keep-alive agent, or one HTTP/2 session per member with `protocol: 'http2'` (closed by `stop`,
 * and for a member that left the pool by `keepOnly`). A member turns unhealthy after `unhealthyThreshold`
 * failing checks in a row and healthy after `healthyThreshold` passing ones. `https:` members are
 * checked with the relay's TLS settings (`useTls`), as its attempts connect.
 *
 * @example
 * const checker = new HealthChecker(rules, () => pool.members, (member, healthy) => …);
 * checker.start();
 */
export class HealthChecker {
  private timer: NodeJS.Timeout | null = null;
  /** The relay's TLS settings (`StageContext.tls`): its CA, servername, client certificate. */
  private tls: Readonly<TlsOptions> = noTls;
  private readonly http1 = new CheckAgents(noTls);
  private readonly h2 = new Http2Checks(noTls);
  /**
   * The members being checked by this run (from `start` to `stop`). Each run has its own set: a
   * check of an earlier run that ends after a restart (`stop` cancels it) is neither recorded nor
   * allowed to take a member out of the new run's set.
   */
  private checking = new Set<Member>();

  constructor(
    private readonly rules: HealthRules,
    private readonly members: () => readonly Member[],
    private readonly onChange: HealthChange,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.checkAll(), this.rules.interval);
    // The checks alone never keep a process alive: a relay's server does.
    this.timer.unref();
    try {
      this.checkAll();
    } catch (error) {
      // A check node refuses to make now it refuses on every tick, where the throw would end the process.
      this.stop();
      throw error;
    }
  }

  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.checking = new Set();
    this.http1.closeAll();
    this.h2.closeAll();
  }

  /**
   * Checks `https:` members with these TLS settings from now on (the relay's, from `wrap`). New
   * settings close the connections made with the old ones.
   */
  useTls(tls: Readonly<TlsOptions>): void {
    if (tls === this.tls) return;
    this.tls = tls;
    this.http1.useTls(tls);
    this.h2.useTls(tls);
  }

  /** Closes the checks' connections to targets no longer in `members` (setTargets, a DNS change). */
  keepOnly(members: readonly Member[]): void {
    this.http1.keepOnly(members);
    this.h2.keepOnly(members);
  }

  /** Checks every member not already being checked. */
  checkAll(): void {
    const members = this.members();
    for (const member of members) if (!this.checking.has(member)) this.check(member);
  }

  private check(member: Member): void {
    const run = this.checking;
    run.add(member);
    let settled = false;
    // From the start to the response head, as documented: the request's own `timeout` is only an
    // idle timer, which a target that trickles its head a byte at a time would keep resetting.
    const deadline = setTimeout(() => cancel(), this.rules.timeout);
    deadline.unref();
    const done = (status: number): void => {
      clearTimeout(deadline);
      if (settled) return;
      settled = true;
      run.delete(member);
      // Only a check of the running run counts: one that stop() cancelled is no verdict on the target.
      if (run === this.checking && this.timer !== null) this.record(member, this.passes(status));
    };
    let cancel: () => void;
    try {
      cancel = this.rules.protocol === 'http2' ? this.checkHttp2(member, done) : this.checkHttp1(member, done);
    } catch (error) {
      // node refused to make the request (a path with a space): the deadline must not fire a cancel
      // that does not exist, and the member must not stay marked as being checked.
      clearTimeout(deadline);
      run.delete(member);
      throw error;
    }
  }

  /** One HTTP/1.1 GET through the keep-alive agents; returns what cancels it. */
  private checkHttp1(member: Member, done: CheckStatus): () => void {
    const target = member.target;
    const secure = target.protocol === 'https:';
    const request = (secure ? httpsRequest : httpRequest)({
      host: target.hostname,
      port: target.port,
      socketPath: target.socketPath,
      path: this.rules.path,
      method: 'GET',
      headers: { host: target.host, 'user-agent': 'relay-health-check' },
      agent: this.http1.get(member),
      timeout: this.rules.timeout,
    });
    request.on('response', (response: IncomingMessage) => {
      response.resume();
      done(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy(new Error('health check timed out')));
    request.on('error', () => done(0));
    request.on('close', () => done(0));
    request.end();
    return () => request.destroy(new Error('health check timed out'));
  }

  /** One HTTP/2 GET on the member's session; a check that times out closes the session (the next one reconnects). */
  private checkHttp2(member: Member, done: CheckStatus): () => void {
    this.h2.get(member, this.rules.path, done);
    return () => {
      this.h2.close(member);
      done(0);
    };
  }

  private passes(status: number): boolean {
    const statuses = this.rules.statuses;
    // 0: no response (statuses are checked to be 100 to 599).
    return statuses === null ? status >= 200 && status < 400 : statuses.has(status);
  }

  private record(member: Member, passed: boolean): void {
    if (passed) {
      member.checks = Math.max(member.checks, 0) + 1;
      if (!member.healthy && member.checks >= this.rules.healthyThreshold) this.onChange(member, true);
      // A healthy target that outlier detection ejected answers its checks: it comes back now (Envoy's
      // `successful_active_health_check_uneject_host`), not after its whole ejection time.
      else if (member.healthy && member.ejectedUntil !== 0) this.onChange(member, true);
    } else {
      member.checks = Math.min(member.checks, 0) - 1;
      if (member.healthy && -member.checks >= this.rules.unhealthyThreshold) this.onChange(member, false);
    }
  }
}
