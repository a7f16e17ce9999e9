import { createRequire } from 'node:module';
import type { Logger } from '@relay/core';
import type { LimitStore } from '@relay/limits';
import { redisStore } from '@relay/limits/redis';
import type { Redis, RedisOptions } from 'ioredis';
import { ConfigError } from './config-error.js';
import { shownRedisUrl, type RedisSettings } from './schema.js';

/**
 * How long starting (or a reload to a new Redis) waits for the client's `ready`: long enough for a
 * Redis on the network to answer, short enough that a Redis that is down does not hold the
 * gateway back (its limits then follow `failOpen` until it is reachable).
 */
export const redisReadyWait = 2_000;

/** How long a shutdown waits for Redis to answer `QUIT` before it drops the connection. */
const quitWait = 1_000;

/**
 * The ioredis client the gateway owns for its `redis` block: created (not connected) when a
 * config is built, connected by `ready()` before the config serves, kept by a reload that names
 * the same `url`, closed by `close()`. Its log lines and errors show the URL without its password.
 *
 * @example
 * const redis = new RedisConnection(config.redis, loaded.shown, logger);
 * await redis.ready();
 */
export class RedisConnection {
  readonly url: string;
  private readonly client: Redis;
  private readonly shown: string;
  private readonly secrets: string[];
  /** Whether the connection is known to be down: its failure is logged once, and its return. */
  private down = false;
  private connecting: Promise<void> | null = null;

  constructor(settings: RedisSettings, file: string, private readonly logger: Logger) {
    this.url = settings.url;
    this.shown = shownRedisUrl(settings.url);
    this.secrets = secretsOf(settings.url);
    const Client = loadIoredis(file);
    this.client = new Client(settings.url, clientOptions);
    this.client.on('error', (error: Error) => this.failed(error));
    this.client.on('ready', () => this.connected());
  }

  /**
   * The buckets of one route's limits: keys under the block's `prefix` and the route's label (each
   * limit adds its name, unique within the route), the same in every instance with this config.
   */
  storeFor(settings: RedisSettings, label: string): LimitStore {
    return redisStore({ client: this.client, prefix: `${settings.prefix ?? 'relay:limits:'}${label}:`, timeout: settings.timeout ?? 200, logger: this.logger });
  }

  /**
   * Connects (once) and waits for `ready` up to `redisReadyWait`: a Redis that does not answer by
   * then is logged and the gateway serves anyway; ioredis keeps reconnecting behind it.
   */
  ready(): Promise<void> {
    return (this.connecting ??= this.connect());
  }

  /** Quits the connection (dropped if Redis does not answer within 1 s, or is not connected): no reconnect keeps the process alive. */
  async close(): Promise<void> {
    if (this.client.status === 'ready') {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, quitWait)));
      await Promise.race([this.client.quit().catch(() => undefined), gaveUp]);
      clearTimeout(timer);
    }
    this.client.disconnect();
    this.logger.debug({ redis: this.shown }, 'redis connection closed');
  }

  private async connect(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, redisReadyWait, false)));
    // A refused first connection rejects `connect()`, and ioredis goes on retrying: the `error` listener has logged it.
    const connected = this.client.connect().then(() => true, () => false);
    const ready = await Promise.race([connected, waited]);
    clearTimeout(timer);
    if (!ready && this.client.status !== 'ready') {
      this.logger.warn({ redis: this.shown, waited: redisReadyWait }, 'redis not ready: serving anyway; rate limits follow failOpen until it connects');
    }
  }

  private failed(error: Error): void {
    if (this.down) return;
    this.down = true;
    this.logger.error({ redis: this.shown, error: this.redact(error.message) }, 'redis connection failed: rate limits follow failOpen until it is back');
  }

  private connected(): void {
    this.logger.info({ redis: this.shown }, this.down ? 'redis connection back' : 'redis connected');
    this.down = false;
  }

  /** An error message without the password, should a library or the server repeat it. */
  private redact(message: string): string {
    let text = message;
    for (const secret of this.secrets) text = text.split(secret).join('***');
    return withoutUserinfoAnywhere(text);
  }
}

/**
 * ioredis: reconnect for ever (ioredis's default backoff, at most 2 s apart), and never queue a
 * call while disconnected, so a limit's call fails at once and its `failOpen` decides. One retry
 * per call at most: a call waits no longer than the store's `timeout` anyway.
 */
const clientOptions: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 };

/** The password of a URL, as written and decoded, and any given in its query: what an error message must not repeat. */
function secretsOf(url: string): string[] {
  if (!URL.canParse(url)) return [];
  const { password, searchParams } = new URL(url);
  // ioredis also takes the password (and the user) from the query.
  const given = [password, safeDecode(password), ...['password', 'username'].flatMap((name) => searchParams.getAll(name))];
  return given.filter((value) => value.length > 0);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** `scheme://user:pass@` anywhere in a message (an error that quotes the URL). */
function withoutUserinfoAnywhere(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi, '$1');
}

type RedisClass = new (url: string, options: RedisOptions) => Redis;

/**
 * ioredis, an optional peer dependency: only a config with a `redis` block needs it. Loaded with
 * `require` (ioredis is CommonJS), so building a config stays synchronous.
 */
function loadIoredis(file: string): RedisClass {
  try {
    return (createRequire(import.meta.url)('ioredis') as { Redis: RedisClass }).Redis;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new ConfigError(file, [{ path: 'redis', message: 'needs the ioredis package, an optional peer dependency of @relay/gateway: npm install ioredis' }]);
  }
}
