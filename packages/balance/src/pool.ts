import { silentLogger, type ClientInfo, type Logger, type ProxyRequest, type TlsOptions } from '@relay/core';
import { DnsWatch, lookupAll, type Resolve } from './dns.js';
import { HealthChecker } from './health.js';
import type { KeyOf } from './hash-key.js';
import { Member, type TargetState } from './member.js';
import type { CircuitRules, HealthRules, OutlierRules, TargetEvent, TargetSpec } from './options.js';
import { countFailure } from './outlier.js';
import type { Pick } from './strategies.js';
import { parseSpecs } from './targets.js';

/** What a pool is built from: `balance()`'s options, checked. */
export interface PoolRules {
  readonly pick: Pick;
  /** Whether a full target may be passed over for another (every strategy but hashing). */
  readonly movable: boolean;
  readonly keyOf: KeyOf | null;
  readonly outlier: OutlierRules | null;
  readonly health: HealthRules | null;
  readonly circuit: CircuitRules | null;
  readonly onStateChange: ((event: TargetEvent) => void) | null;
  readonly resolve: Resolve | null;
}

/** Where a pool notes the members a client request's attempts went to. */
type TriedSlot = ClientInfo & { [slot: symbol]: Member | Member[] | undefined };

/**
 * The targets of one `balance()` stage and their state: which are in, which are out (ejected,
 * unhealthy), the health checks and DNS lookups that keep it current. Shared by every relay and
 * pipeline the stage is built into.
 */
export class Pool {
  /** Every member, replaced (never changed in place) when the targets change. */
  members: readonly Member[] = [];
  logger: Logger = silentLogger;
  private statics: Member[] = [];
  private watches = new Map<string, DnsWatch>();
  /** The members a request may go to; recomputed when a state changes or an ejection ends. */
  private eligible: readonly Member[] = [];
  private nextReturn = Infinity;
  private health: HealthChecker | null;
  private started: Promise<void> | null = null;
  /**
   * A `setTargets` waiting for the first lookup of names it added (Envoy warms a changed cluster
   * before it takes traffic): until then the previous members serve. Its number; 0: none waiting.
   */
  private switching = 0;
  private switchCount = 0;
  /**
   * The members a client request's attempts went to, oldest first: its retries go to the others
   * (Envoy's `previous_hosts`). One member alone, without an array, until a second attempt.
   */
  // A symbol-keyed slot on the client rather than a WeakMap: an entry per short-lived request costs
  // the collector more (ephemerons) than the pick itself. One symbol per pool: two pools never mix.
  private readonly tried = Symbol('relay.balance.tried');

  constructor(
    private readonly rules: PoolRules,
    targets: readonly TargetSpec[],
  ) {
    this.health = rules.health === null ? null : new HealthChecker(rules.health, () => this.members, (member, healthy) => this.setHealth(member, healthy));
    this.setTargets(targets);
  }

  /** Whether health checks and DNS lookups are running. */
  get running(): boolean {
    return this.started !== null;
  }

  /** Starts health checks and DNS lookups (once); resolves when every name was looked up once. */
  start(): Promise<void> {
    if (this.started !== null) return this.started;
    this.health?.start();
    this.started = Promise.all([...this.watches.values()].map((watch) => watch.start())).then(() => undefined);
    return this.started;
  }

  /** Stops health checks and DNS lookups and closes the health checks' connections. */
  stop(): void {
    this.started = null;
    if (this.switching !== 0) {
      // Nothing looks the names up any more: the new targets go in now (the next start() waits for their lookups if they have no address).
      this.switching = 0;
      this.rebuild();
    }
    this.health?.stop();
    for (const watch of this.watches.values()) watch.stop();
  }

  /** Health checks of `https:` targets connect with these TLS settings: the relay's (`StageContext.tls`). */
  useTls(tls: Readonly<TlsOptions>): void {
    this.health?.useTls(tls);
  }

  /**
   * Replaces the targets: members whose URL stays keep their state, attempts in flight keep their
   * `Target`. A running pool given a name it was not looking up keeps its previous members until
   * that name's first lookup ended (`switchWhenLooked`).
   */
  setTargets(specs: readonly TargetSpec[]): void {
    const parsed = parseSpecs(specs);
    const previous = new Map(this.statics.map((member) => [member.url, member]));
    this.statics = parsed.statics.map((entry) => {
      const member = previous.get(entry.url) ?? new Member(entry.url, entry.weight, entry.target, null);
      member.weight = entry.weight;
      return member;
    });
    const watches = new Map<string, DnsWatch>();
    for (const entry of parsed.dns) {
      const kept = this.watches.get(entry.spec);
      if (kept !== undefined) kept.update(entry);
      const watch = kept ?? new DnsWatch(entry, this.rules.resolve ?? lookupAll, () => this.rebuild(), () => this.logger);
      watches.set(entry.spec, watch);
      if (this.started !== null) void watch.start();
    }
    for (const [spec, watch] of this.watches) if (!watches.has(spec)) watch.stop();
    this.watches = watches;
    this.switching = 0;
    const looking = [...watches.values()].filter((watch) => !watch.ready);
    if (this.started !== null && looking.length > 0 && this.members.length > 0) this.switchWhenLooked(looking);
    else this.rebuild();
  }

  /**
   * Puts the new targets in once `looking`'s first lookups ended (found addresses or failed, as
   * Envoy's STRICT_DNS cluster ends its warming either way): a request in between goes to the
   * previous members, not to a pool without the name's addresses (a 503 ERR_NO_TARGET, or every
   * request on the URL targets listed beside the name). A later `setTargets` replaces the wait.
   */
  private switchWhenLooked(looking: readonly DnsWatch[]): void {
    const switching = ++this.switchCount;
    this.switching = switching;
    // allSettled: a wait that could reject would be one more unhandled rejection.
    void Promise.allSettled(looking.map((watch) => watch.start())).then(() => {
      if (this.switching !== switching) return;
      this.switching = 0;
      this.rebuild();
    });
  }

  /**
   * Takes the health and ejection state of the members `states` names by URL (another pool's
   * `targets()`, such as the pool a reload replaces): what that pool has learnt holds here from the
   * start, rather than every target starting healthy. Health only when this pool checks health,
   * ejections only when it detects outliers: without them nothing would ever undo the state.
   * The addresses of a `{ dns }` target both pools list come along too, for a watch that has not
   * looked its name up yet: until its first lookup, and if that lookup fails.
   */
  adopt(states: readonly TargetState[]): void {
    this.seedWatches(states);
    const byUrl = new Map(states.map((state) => [state.url, state]));
    const now = Date.now();
    for (const member of this.members) {
      const state = byUrl.get(member.url);
      if (state === undefined) continue;
      if (this.rules.health !== null) member.healthy = state.healthy;
      if (this.rules.outlier === null) continue;
      member.failures = state.consecutiveFailures;
      // The count and when the last ejection started go together, ended ejection or not: without its
      // start, the next failure would start the count over (Envoy's multiplier survives cluster updates).
      member.ejections = state.ejections;
      // A state saved before the field existed (plain JavaScript, a stored snapshot) has none: never ejected.
      member.lastEjection = state.lastEjectionAt ?? 0;
      // An ejection in progress keeps its end (Envoy keeps a host's ejection over a cluster update).
      if (state.ejectedUntil > now) member.ejectedUntil = state.ejectedUntil;
    }
    this.refresh(now);
  }

  /** Gives each DNS watch not yet looked up the addresses `states` has for its name. */
  private seedWatches(states: readonly TargetState[]): void {
    let seeded = false;
    for (const watch of this.watches.values()) {
      const origins = states.filter((state) => state.dns === watch.entry.spec).map((state) => state.url);
      if (watch.seed(origins)) seeded = true;
    }
    if (seeded) this.rebuild();
  }

  /** Every target and its state. */
  targets(): TargetState[] {
    const maxRequests = this.rules.circuit?.maxRequests ?? Infinity;
    return this.members.map((member) => member.state(maxRequests));
  }

  /**
   * Puts the members of the static and DNS targets together, announcing who came and went, and
   * closes the health checks' connections to those that went. Not while a `setTargets` waits for a
   * name's first lookup: the previous members serve until then.
   */
  rebuild(): void {
    if (this.switching !== 0) return;
    const members = [...this.statics, ...[...this.watches.values()].flatMap((watch) => watch.members)];
    const kept = new Set(members);
    for (const member of this.members) if (!kept.has(member)) this.announce({ url: member.url, change: 'removed' });
    const had = new Set(this.members);
    for (const member of members) if (!had.has(member)) this.announce({ url: member.url, change: 'added' });
    this.members = members;
    this.health?.keepOnly(members);
    this.refresh(Date.now());
  }

  /**
   * The member for this attempt, or `null` when the pool is empty. Only healthy, not ejected
   * members are chosen; when none is, every member is (Envoy's panic mode: fail open rather than
   * refuse everything). A retry (attempt 2 on) goes to a member no earlier attempt of the same
   * client request went to; once every eligible member was tried, it is chosen among all of them
   * as a first attempt is.
   */
  pick(request: ProxyRequest): Member | null {
    const now = Date.now();
    if (now >= this.nextReturn) this.refresh(now);
    let members = this.eligible;
    if (members.length === 0) return null;
    const retried = request.attempt > 1;
    if (retried && members.length > 1) members = this.untried(members, request.client);
    const key = this.rules.keyOf === null ? null : this.rules.keyOf(request);
    let member = this.rules.pick(members, key);
    const circuit = this.rules.circuit;
    if (circuit !== null && member.inFlight >= circuit.maxRequests && this.rules.movable) {
      const free = members.filter((other) => other.inFlight < circuit.maxRequests);
      if (free.length > 0) member = this.rules.pick(free, key);
    }
    this.remember(request.client, member, retried);
    return member;
  }

  /** Counts an attempt's response: a status the outlier rules name is a failure, any other a success. */
  recordStatus(member: Member, status: number): void {
    const outlier = this.rules.outlier;
    if (outlier === null) return;
    if (outlier.statuses.has(status)) this.recordFailure(member, outlier);
    else member.failures = 0;
  }

  /**
   * Counts an attempt that failed before its response head. `attempt.sentLive`: it was sent while
   * its client stayed and its bound was not cut, so a cut that ended it (`ERR_DEADLINE`) came while
   * it waited on this target.
   */
  recordError(member: Member, error: unknown, attempt: { readonly sentLive: boolean }): void {
    const outlier = this.rules.outlier;
    const code = (error as { code?: unknown } | null)?.code;
    if (outlier === null || typeof code !== 'string' || !countsAsFailure(outlier.errors, code, attempt.sentLive)) return;
    this.recordFailure(member, outlier);
  }

  private recordFailure(member: Member, outlier: OutlierRules): void {
    const now = Date.now();
    // An ejection that has just ended is noticed (and its count reset) before this failure counts.
    if (now >= this.nextReturn) this.refresh(now);
    if (!countFailure(member, this.members, outlier, now)) return;
    this.logger.warn({ target: member.url, ejections: member.ejections, ms: member.ejectedUntil - now }, 'balance: target ejected');
    this.announce({ url: member.url, change: 'ejected', ejectedFor: member.ejectedUntil - now });
    this.refresh(now);
  }

  /**
   * Notes that an attempt of `client`'s request goes to `member`. A first attempt starts the list
   * over: one WeakMap entry and no allocation per request; an array only once a retry comes.
   */
  private remember(client: ClientInfo, member: Member, retried: boolean): void {
    const slot = client as TriedSlot;
    const tried = retried ? slot[this.tried] : undefined;
    if (tried === undefined) slot[this.tried] = member;
    else if (!Array.isArray(tried)) {
      if (tried !== member) slot[this.tried] = [tried, member];
    } else if (!tried.includes(member)) tried.push(member);
  }

  /** The members none of `client`'s earlier attempts went to; all of them when every one was tried. */
  private untried(members: readonly Member[], client: ClientInfo): readonly Member[] {
    const tried = (client as TriedSlot)[this.tried];
    if (tried === undefined) return members;
    const left = Array.isArray(tried) ? members.filter((member) => !tried.includes(member)) : members.filter((member) => member !== tried);
    return left.length === 0 ? members : left;
  }

  private setHealth(member: Member, healthy: boolean): void {
    if (healthy && member.healthy) {
      // An ejected target passed a check: its failures are forgiven and it returns.
      member.failures = 0;
      if (member.ejectedUntil !== 0) this.returned(member);
      this.refresh(Date.now());
      return;
    }
    member.healthy = healthy;
    // Passing health checks end an ejection too, and start the failure count over: the target answers again.
    if (healthy) {
      member.ejectedUntil = 0;
      member.failures = 0;
    }
    this.logger.info({ target: member.url }, healthy ? 'balance: target healthy' : 'balance: target unhealthy');
    this.announce({ url: member.url, change: healthy ? 'healthy' : 'unhealthy' });
    this.refresh(Date.now());
  }

  /** Recomputes the eligible members and when the next ejection ends; announces returns. */
  private refresh(now: number): void {
    const eligible: Member[] = [];
    let nextReturn = Infinity;
    for (const member of this.members) {
      if (member.ejected(now)) nextReturn = Math.min(nextReturn, member.ejectedUntil);
      else if (member.ejectedUntil !== 0) this.returned(member);
      if (member.healthy && !member.ejected(now)) eligible.push(member);
    }
    this.eligible = eligible.length > 0 ? eligible : this.members;
    this.nextReturn = nextReturn;
  }

  private returned(member: Member): void {
    member.ejectedUntil = 0;
    // A returning target starts its count over, as Envoy's unejectHost resets the consecutive counters.
    member.failures = 0;
    this.logger.info({ target: member.url }, 'balance: target returned after its ejection');
    this.announce({ url: member.url, change: 'returned' });
  }

  private announce(event: TargetEvent): void {
    const listener = this.rules.onStateChange;
    if (listener === null) return;
    try {
      listener(event);
    } catch (error) {
      this.logger.error({ error: (error as Error).message }, 'balance: onStateChange threw');
    }
  }
}

/**
 * Whether an attempt's error code counts against its target. A request deadline (`retry({ deadline })`)
 * that cut an attempt waiting on its target is that target's timeout, counted as `ERR_READ_TIMEOUT`
 * is (or as `ERR_DEADLINE` when `errors` names it): Envoy counts a route timeout against the host,
 * nginx counts `proxy_read_timeout` in `max_fails`. Without it, a target that accepts and never
 * answers is never ejected when the deadline is shorter than the relay's read timeout. A deadline
 * that had passed before the attempt was sent says nothing about the target.
 */
function countsAsFailure(errors: ReadonlySet<string>, code: string, waited: boolean): boolean {
  if (code !== 'ERR_DEADLINE') return errors.has(code);
  return waited && (errors.has(code) || errors.has('ERR_READ_TIMEOUT'));
}
