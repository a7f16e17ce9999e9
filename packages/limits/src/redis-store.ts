import type { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { silentLogger, type Logger } from '@relay/core';
import { assertLogger, assertTimerDelay } from '@relay/core/transport';
import { LogThrottle } from './log-throttle.js';
import { assertKnownKeys, assertOptionsObject, assertPositive, assertPositiveInteger } from './options.js';
import type { Bucket, BucketPolicy, Decision, LimitStore } from './store.js';

/** Options of `redisStore()`. */
export interface RedisStoreOptions {
  /** An ioredis client (or cluster) the application made and closes. Required. */
  client: Redis | Cluster;
  /** Prefix of every key this store writes. Default `'relay:limits:'`. */
  prefix?: string;
  /** Longest wait for Redis, in ms (at most 2147483647, node's timer limit): past it the call fails and the limit's `failOpen` decides. Default 200. */
  timeout?: number;
  /**
   * Most calls this store may have waiting on Redis at once, those past their `timeout` whose answer has
   * not come yet included (a frozen Redis keeps them queued on the connection): past it a call fails at
   * once, as a timeout does. Default 10000.
   */
  maxPending?: number;
  /** Where the store logs (at `error`) the token of a timed-out call that it could not give back. Default: nothing is logged. */
  logger?: Logger;
}

const optionNames = ['client', 'prefix', 'timeout', 'maxPending', 'logger'];

/**
 * The token-bucket step (the same GCRA as `takeToken`) as one Lua script, run atomically by Redis
 * on Redis's own clock, so instances with skewed clocks still share one bucket. It is given to
 * rate-limiter-flexible as its `customIncrTtlLuaScript`, which calls it with KEYS[1] = the key and
 * ARGV = cost, key TTL (s), `points` and `duration` (s) of the limiter: here the bucket's capacity
 * and the seconds an empty bucket takes to fill. It answers rate-limiter-flexible's `{consumed,
 * ttl}`: consumed above capacity means refused, ttl is then the ms until the next token, else the
 * ms until the bucket is full.
 */
const tokenBucketScript = `
local burst = tonumber(ARGV[3])
local window = tonumber(ARGV[4]) * 1000
local interval = window / burst
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local waiting = 0
if tat > now then waiting = tat - now end
local ahead = waiting + interval
if ahead > window + 0.000001 then
  return {burst + 1, math.ceil(ahead - window)}
end
redis.call('SET', KEYS[1], string.format('%.3f', now + ahead), 'PX', math.ceil(ahead))
return {burst - math.floor((window - ahead) / interval + 0.000001), math.ceil(ahead)}
`;

/**
 * `refundToken` as one Lua script on Redis's clock (KEYS[1] = the key, ARGV[1] = the ms the refused
 * request still owes, at most one interval): the bucket's `tat` that much earlier, or the key deleted
 * when that bucket is full (as an expired key is). A key that is gone has nothing to give back.
 */
const refundScript = `
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local owed = tonumber(ARGV[1])
if not (owed > 0) then return 0 end
local restored = tat - owed
if restored <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', restored), 'PX', math.ceil(restored - now))
end
return 1
`;

/** rate-limiter-flexible runs the custom script only for a key TTL of 1 s or more; the script sets its own. */
const consumeOptions = { customDuration: 1 };

/**
 * Token buckets in Redis, shared by every gateway instance that uses the same Redis and prefix:
 * one atomic Lua script per request (no read-then-write race between instances), through
 * rate-limiter-flexible and ioredis. A call that fails or takes longer than `timeout` rejects,
 * and the limit's `failOpen` decides (let through and log, or 503); while ioredis is not
 * connected calls fail at once instead of queueing. A call that failed is charged nothing: the
 * token its script takes when a stalled Redis answers late is given back at once. At most
 * `maxPending` calls wait on Redis at once; past that a call fails at once.
 *
 * @example
 * const client = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
 * rateLimit({ points: 100, duration: 60_000, store: redisStore({ client }) });
 */
export function redisStore(options: RedisStoreOptions): LimitStore {
  assertOptionsObject(options, 'redisStore');
  assertKnownKeys(options, optionNames, 'redisStore');
  const { client } = options;
  if (client === null || typeof client !== 'object' || typeof (client as Redis).defineCommand !== 'function') {
    throw new TypeError('redisStore: client must be an ioredis client (new Redis(url))');
  }
  const prefix = options.prefix ?? 'relay:limits:';
  if (typeof prefix !== 'string') throw new TypeError('redisStore: prefix must be a string');
  const timeout = options.timeout ?? 200;
  assertPositive(timeout, 'redisStore: timeout');
  // It arms a timer per call: node fires a longer one after 1 ms, and every call would fail as if Redis were down.
  assertTimerDelay(timeout, 'redisStore: timeout');
  const maxPending = options.maxPending ?? 10_000;
  assertPositiveInteger(maxPending, 'redisStore: maxPending');
  const logger = options.logger ?? silentLogger;
  assertLogger(logger, 'redisStore: logger');
  // One count for every bucket of the store: they queue their calls on the same client.
  const calls = new PendingCalls(maxPending, logger);
  return {
    kind: 'redis',
    bind: (policy) => new RedisBucket(policy, client, `${prefix}${policy.name}`, timeout, calls),
  };
}

/**
 * The calls a store has sent and Redis has not answered yet. A frozen Redis (stopped, the connection
 * still open) answers none, and ioredis keeps each one queued however long it waits: bounded here, so
 * a long freeze neither grows the queue without end nor, when Redis wakes, runs a flood of scripts.
 */
class PendingCalls {
  count = 0;
  /** Refunds of timed-out takes that failed: logged at most once a second. */
  readonly lostRefunds = new LogThrottle();

  constructor(
    readonly max: number,
    readonly logger: Logger,
  ) {}

  /** Counts a call about to be sent, or fails it at once when `max` are waiting already. */
  enter(): Error | null {
    if (this.count >= this.max) return new Error(`redis has ${this.count} calls waiting for an answer (maxPending ${this.max})`);
    this.count++;
    return null;
  }

  leave(): void {
    this.count--;
  }
}

/** The buckets of one policy in Redis. */
class RedisBucket implements Bucket {
  private readonly limiter: RateLimiterRedis;
  /** Milliseconds an empty bucket takes to fill, less one token: turns "next token in" into "full in". */
  private readonly fillAfterNext: number;
  /** Milliseconds one token stands for: the most a refund gives back. */
  private readonly interval: number;
  /** The policy's name, for the log line of a token that could not be given back. */
  private readonly name: string;

  constructor(
    policy: BucketPolicy,
    private readonly client: Redis | Cluster,
    keyPrefix: string,
    private readonly timeout: number,
    private readonly calls: PendingCalls,
  ) {
    this.name = policy.name;
    const window = (policy.duration * policy.burst) / policy.points;
    this.fillAfterNext = window - policy.duration / policy.points;
    this.interval = policy.duration / policy.points;
    this.limiter = new RateLimiterRedis({
      storeClient: client,
      keyPrefix,
      points: policy.burst,
      duration: window / 1000,
      rejectIfRedisNotReady: true,
      customIncrTtlLuaScript: tokenBucketScript,
    });
  }

  /**
   * One script in Redis, bounded by `timeout`. A call that timed out has failed for its caller (who
   * answered 503 or went on without a limit), yet its script stays queued on the connection and runs
   * when Redis answers: the token that late run takes is given back at once, so a failed call is
   * charged nothing (README: a refused request is charged by none of the limits).
   */
  take(key: string): Promise<Decision> {
    const refused = this.calls.enter();
    if (refused !== null) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        onTimeout(reject, this.timeout);
      }, this.timeout);
      this.limiter.consume(key, 1, consumeOptions).then(
        (result) => {
          // Built when the answer comes, as for an answer in time: the refund gives back what is owed from now on.
          const decision = this.allowed(result);
          if (timedOut) {
            this.giveBackLate(key, decision);
            return;
          }
          this.calls.leave();
          clearTimeout(timer);
          resolve(decision);
        },
        (error: unknown) => {
          this.calls.leave();
          // Refused or failed: no token was taken, nothing to give back if it comes late.
          clearTimeout(timer);
          if (!(error instanceof RateLimiterRes)) reject(error);
          else resolve({ allowed: false, remaining: 0, retryAfterMs: error.msBeforeNext, resetMs: error.msBeforeNext + this.fillAfterNext });
        },
      );
    });
  }

  private allowed(result: RateLimiterRes): Decision {
    // tat on this process's clock: the refund turns it into what is still owed, a duration, which Redis's clock agrees on.
    const resetMs = result.msBeforeNext;
    return { allowed: true, remaining: result.remainingPoints, retryAfterMs: 0, resetMs, tat: performance.now() + resetMs };
  }

  /**
   * The token of a take whose caller was told it failed: given back; if that fails too, logged, and
   * it stays spent. The refund takes the take's place among the pending calls (one for one, so it
   * never grows the queue), so the calls sent meanwhile cannot crowd it out.
   */
  private giveBackLate(key: string, decision: Decision): void {
    const owed = this.owed(decision);
    if (!(owed > 0)) {
      this.calls.leave();
      return;
    }
    this.sendRefund(key, owed).then(undefined, (error: unknown) => {
      const fields = { limit: this.name, store: 'redis', error: (error as Error)?.message ?? String(error) };
      this.calls.lostRefunds.log(this.calls.logger, 'error', fields, 'rate limit store failed: the token of a call that timed out is not given back');
    });
  }

  /**
   * Runs only for a refused request (not per request): one EVAL, bounded by `timeout` as `take` is.
   * Gives back only what the request still owes: the time between its take and now has refilled
   * the rest, which another request may have taken since.
   */
  refund(key: string, decision: Decision): Promise<void> {
    const owed = this.owed(decision);
    // Refilled already: nothing owed, nothing to write.
    if (!(owed > 0)) return Promise.resolve();
    const refused = this.calls.enter();
    if (refused !== null) return Promise.reject(refused);
    return this.sendRefund(key, owed);
  }

  /** What the token of `decision` still owes now, ms: one interval at most, nothing (≤ 0) once refilled. */
  private owed(decision: Decision): number {
    return decision.tat === undefined ? 0 : Math.min(this.interval, decision.tat - performance.now());
  }

  /** The refund script, in a pending call the caller has counted: it is freed when the script settles. */
  private sendRefund(key: string, owed: number): Promise<void> {
    // As for take (rejectIfRedisNotReady): fail now rather than wait in ioredis's offline queue.
    if (this.client.status !== 'ready') {
      this.calls.leave();
      return Promise.reject(new Error(`redis is not ready (${this.client.status})`));
    }
    return new Promise((resolve, reject) => {
      // A refund that times out still runs when Redis answers: it gives back the token then, which is what it is for.
      const timer = setTimeout(onTimeout, this.timeout, reject, this.timeout);
      this.client.eval(refundScript, 1, this.limiter.getKey(key), owed.toFixed(3)).then(
        () => {
          this.calls.leave();
          clearTimeout(timer);
          resolve();
        },
        (error: unknown) => {
          this.calls.leave();
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}

function onTimeout(reject: (error: Error) => void, timeout: number): void {
  reject(new Error(`redis did not answer within ${timeout} ms`));
}
