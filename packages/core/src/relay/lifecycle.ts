import { RelayError } from '../errors.js';
import { publishLifecycle } from '../events.js';
import { assertKnownKeys } from '../known-keys.js';
import { assertTimeout } from '../options.js';
import type { BoundTransport, Logger, Target } from '../types.js';
import type { RelayState } from './api.js';
import { InFlightList, type InFlight } from './in-flight.js';

/** What a lifecycle starts and stops. */
export interface LifecycleParts {
  readonly transport: BoundTransport;
  readonly websocket: BoundTransport | null;
  readonly logger: Logger;
  readonly target: Target;
  readonly shutdownTimeout: number;
}

const shutdownOptionNames: readonly string[] = ['timeout'];

/**
 * A relay's state, its requests in flight, and the start and stop of its transports. The first
 * request starts a relay nobody started (`startup()` is for users who want errors early); a relay
 * that was shut down stays down until `startup()` is called again, so a drained relay never
 * comes back to life because one late request arrived.
 */
export class Lifecycle {
  state: RelayState = 'stopped';
  private readonly active = new InFlightList();
  private startupPromise: Promise<void> | null = null;
  private shutdownPromise: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  /** `shutdown()` was called and no `startup()` since: requests are refused, not used to start. */
  private closed = false;

  constructor(private readonly parts: LifecycleParts) {}

  get inFlight(): number {
    return this.active.size;
  }

  /** Whether a request arriving now may start the relay (and wait for it) rather than be refused. */
  get startsOnDemand(): boolean {
    return !this.closed && (this.state === 'stopped' || this.state === 'starting');
  }

  startup(): Promise<void> {
    this.closed = false;
    return this.start();
  }

  /** Starts the relay for a request: the same start, without reopening a relay that was shut down. */
  start(): Promise<void> {
    if (this.state === 'running') return Promise.resolve();
    this.startupPromise ??= this.run();
    return this.startupPromise;
  }

  private async run(): Promise<void> {
    const { transport, websocket, logger, target } = this.parts;
    try {
      await (this.shutdownPromise ?? Promise.resolve());
      this.state = 'starting';
      await transport.startup();
      await websocket?.startup();
      this.state = 'running';
      logger.debug({ target: target.origin }, 'relay started');
      publishLifecycle(target, true);
    } catch (error) {
      this.state = 'stopped';
      throw error;
    } finally {
      this.startupPromise = null;
    }
  }

  shutdown(options: { timeout?: number } = {}): Promise<void> {
    // Checked first, as the timeout is: `{ timout: 0 }` must not wait the default 10 s, silently.
    if (options === null || typeof options !== 'object') throw new TypeError('shutdown(options) needs an options object: { timeout }');
    assertKnownKeys(options, shutdownOptionNames, 'shutdown');
    const timeout = options.timeout ?? this.parts.shutdownTimeout;
    // Checked first: a refused call must leave the relay as it was, serving.
    assertTimeout(timeout, 'shutdown timeout');
    this.closed = true;
    if (this.shutdownPromise !== null) return this.shutdownPromise;
    if (this.state === 'stopped' && this.startupPromise === null) return Promise.resolve();
    this.shutdownPromise = this.stop(timeout).finally(() => {
      this.shutdownPromise = null;
    });
    return this.shutdownPromise;
  }

  private async stop(timeout: number): Promise<void> {
    const { transport, websocket, logger, target } = this.parts;
    await (this.startupPromise ?? Promise.resolve()).catch(() => {});
    this.state = 'stopping';
    // Relayed WebSockets never finish on their own: they are closed (1001) while HTTP drains, so a
    // peer that never answers its close (up to the websocket's closeTimeout) does not push back the
    // deadline of the HTTP requests in flight.
    await Promise.all([websocket?.shutdown(), this.drain(timeout)]);
    await transport.shutdown();
    this.state = 'stopped';
    logger.debug({ target: target.origin }, 'relay stopped');
    publishLifecycle(target, false);
  }

  private drain(timeout: number): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let grace: NodeJS.Timeout | null = null;
      const timer = setTimeout(() => {
        grace = this.abortAll(timeout);
      }, timeout);
      this.drained = () => {
        clearTimeout(timer);
        if (grace !== null) clearTimeout(grace);
        this.drained = null;
        resolve();
      };
    });
  }

  /** The deadline passed: aborts what is left, and gives their reports a second before letting go. */
  private abortAll(timeout: number): NodeJS.Timeout {
    const logger = this.parts.logger;
    const reason = new RelayError('ERR_SHUTTING_DOWN', `shutdown deadline of ${timeout} ms passed`);
    logger.warn({ inFlight: this.active.size, timeout }, 'relay shutdown deadline passed: aborting in-flight requests');
    for (const exchange of this.active.entries()) exchange.abortForShutdown(reason);
    // Aborted exchanges report back on their socket's close; never let one missing report hold shutdown.
    return setTimeout(() => {
      logger.error({ inFlight: this.active.size }, 'relay shutdown: in-flight requests did not close after abort');
      this.active.clear();
      this.drained?.();
    }, 1_000);
  }

  track(exchange: InFlight): void {
    this.active.add(exchange);
  }

  finished(exchange: InFlight): void {
    this.active.delete(exchange);
    if (this.active.size === 0 && this.drained !== null) this.drained();
  }
}
