import type { Readable } from 'node:stream';
import pRetry, { type RetryContext } from 'p-retry';
import { loggedPath } from '@relay/core/transport';
import { AttemptBound, toRelayError, type ClientInfo, type Handler, type HeaderRecord, type Logger, type ProxyRequest, type ProxyResponse, type RelayError, type Stage, type StageContext, type Target } from '@relay/core';
import { copyHeaders } from '@relay/core/transport';
import { BodyCollector, ReplayStream } from './replay.js';
import { compileRetryRules, deadlineError, decideRetry, fitsDeadline, waitUnlessAborted, type RetryOptions, type RetryRules } from './retry-rules.js';

/**
 * Retries failed upstream attempts with exponential backoff, without ever duplicating a write
 * the user did not opt into and without ever losing a request body.
 *
 * Only idempotent methods retry unless `methods` says otherwise. A body up to `maxReplayBytes` is
 * buffered and sent whole, with its `Content-Length`, on every attempt; a larger one streams and is
 * not retried once its first byte has left. Put it outside stages that should run per attempt; the
 * relay's `timeout` applies to each attempt, `deadline` to all of them together.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://api:8000',
 *   timeout: { connect: 2_000, read: 10_000 },
 *   stages: [retry({ maxRetries: 3, backoffFactor: 200, jitter: true, deadline: 20_000 })],
 * });
 */
export function retry(options: RetryOptions = {}): Stage {
  const rules = compileRetryRules(options, 'retry');
  const { policy, maxRetries, deadline } = rules;
  return {
    name: 'retry',
    wrap(next: Handler, context: StageContext): Handler {
      const settings: RetrySettings = {
        next,
        rules,
        maxRetries,
        maxReplayBytes: rules.maxReplayBytes,
        deadline,
        logger: context.logger,
        target: context.target,
        stallTimeout: context.timeouts.write,
        logQuery: context.logQuery === true,
      };
      return function retryStage(request: ProxyRequest): Promise<ProxyResponse> {
        if (maxRetries === 0 || !policy.retriesMethod(request.method)) {
          // No second attempt is possible: no buffering, no loop, nothing per request but the deadline.
          return deadline === 0 ? next(request) : sendOnceWithin(settings, request);
        }
        return new RetryRun(settings, request).run();
      };
    },
  };
}

/** What every run of one wrapped stage shares: built once in `wrap`. */
interface RetrySettings {
  readonly next: Handler;
  readonly rules: RetryRules;
  readonly maxRetries: number;
  readonly maxReplayBytes: number;
  readonly deadline: number;
  readonly logger: Logger;
  /** The relay's own target: where an attempt goes when no stage chose one. */
  readonly target: Target;
  readonly stallTimeout: number;
  /** Log lines carry the query string (the relay's `logQuery`). */
  readonly logQuery: boolean;
}

/** How the request body is sent on each attempt. */
const enum BodyMode {
  /** No body. */
  None,
  /** Buffered here: each attempt gets a fresh stream of the same bytes, with their Content-Length. */
  Buffered,
  /** Replayable already (`request.replayBody` from an earlier stage). */
  Replayable,
  /** The client's one-shot stream: resent only if no byte of it was read. */
  Stream,
}

/** A retryable status, thrown inside the p-retry loop so p-retry counts it; unwrapped at the end. */
class RetryableResponse extends Error {
  constructor(readonly response: ProxyResponse) {
    super(`upstream answered ${response.status}`);
  }
}

/**
 * A run's `deadline`. When it passes, the run's attempts are cut (`bound`, which each of them
 * carries: the attempt in flight at once, one still in an inner stage when it reaches its
 * transport, and never the attempt of another run or the client, so a stage outside this one can
 * still answer the 504 its own way, or try again) and the run rejects with `ERR_DEADLINE` at once,
 * even if the attempt is still in an inner stage that does not hear the cut.
 */
class Deadline {
  /** Set when the deadline passed. */
  error: RelayError | null = null;
  /** Rejects with `error` when the deadline passes; never settles otherwise. */
  readonly expiry: Promise<never>;
  /** The `request.bound` of the run's attempts. */
  readonly bound: AttemptBound;
  private reject: ((error: RelayError) => void) | null = null;
  private timer: NodeJS.Timeout | null;
  private readonly onExpire: (() => void) | null;

  constructor(ms: number, request: ProxyRequest, onExpire: (() => void) | null = null) {
    this.expiry = new Promise<never>((_resolve, reject) => (this.reject = reject));
    this.bound = new AttemptBound(request);
    this.onExpire = onExpire;
    this.timer = setTimeout(onDeadline, ms, this, ms);
  }

  expire(ms: number): void {
    this.timer = null;
    const error = deadlineError(ms);
    this.error = error;
    this.onExpire?.();
    this.bound.cut(error);
    this.reject!(error);
  }

  /** The run answered before the deadline: the timer is no longer needed. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

function onDeadline(deadline: Deadline, ms: number): void {
  deadline.expire(ms);
}

/** One attempt, no retry possible, bounded by the deadline. */
async function sendOnceWithin(settings: RetrySettings, request: ProxyRequest): Promise<ProxyResponse> {
  const deadline = new Deadline(settings.deadline, request);
  try {
    return await Promise.race([sendOnce(settings.next, request, deadline), deadline.expiry]);
  } finally {
    deadline.stop();
  }
}

async function sendOnce(next: Handler, request: ProxyRequest, deadline: Deadline): Promise<ProxyResponse> {
  // An attempt of its own, carrying the bound: a stage outside may send `request` again after the 504.
  const attempt: ProxyRequest = { ...request, bound: deadline.bound };
  try {
    const response = await next(attempt);
    // The head came after the deadline (an inner stage answered late): the client has its 504.
    if (deadline.error !== null) {
      discard(response);
      throw deadline.error;
    }
    return response;
  } finally {
    // Where the attempt went (a balancer inside chose in place), as outer stages saw it without a deadline.
    if (deadline.error === null) request.target = attempt.target;
  }
}

/** One client request that may be sent more than once: its body, its deadline and its p-retry loop. */
class RetryRun {
  private mode = BodyMode.None;
  private bytes: Buffer | null = null;
  private replay: (() => ReplayStream) | null = null;
  private collector: BodyCollector | null = null;
  /** The collector read the body past the limit and put it back: its own read does not count. */
  private putBack = false;
  /** An attempt's transport started reading a put-back body. */
  private takenByAttempt = false;
  private deadline: Deadline | null = null;
  private startedAt = 0;
  /** The attempt sent last, as the stages inside left it (`target` set by a balancer). */
  private lastAttempt: ProxyRequest | null = null;
  private readonly headers: HeaderRecord;

  constructor(
    readonly settings: RetrySettings,
    readonly request: ProxyRequest,
  ) {
    this.headers = request.headers;
  }

  run(): Promise<ProxyResponse> {
    const ms = this.settings.deadline;
    return ms === 0 ? this.loop() : this.runWithin(ms);
  }

  /** The run bounded by its deadline: it answers 504 `ERR_DEADLINE` at the deadline whatever is still in flight. */
  private async runWithin(ms: number): Promise<ProxyResponse> {
    this.startedAt = performance.now();
    const deadline = new Deadline(ms, this.request, () => this.collector?.cancel(deadline.error!));
    this.deadline = deadline;
    try {
      return await Promise.race([this.loop(), deadline.expiry]);
    } finally {
      deadline.stop();
    }
  }

  /** The body, the first attempt and the retries: what the deadline bounds. */
  private async loop(): Promise<ProxyResponse> {
    try {
      if (this.request.body !== null) await this.prepareBody();
      try {
        // The first attempt is sent directly: p-retry costs about 15 µs a call, paid only once a retry may follow.
        return await this.attempt(1);
      } catch (error) {
        return await this.retryAfterFirst(error);
      }
    } catch (error) {
      if (error instanceof RetryableResponse) {
        // Retries are spent: the last response is the answer, unless the deadline has answered already.
        if (this.expired() === null) return error.response;
        discard(error.response);
      }
      throw error;
    }
  }

  /**
   * The p-retry loop, entered when the first attempt failed. Its first call rethrows that failure, so
   * p-retry counts every attempt and `shouldRetry` decides on each outcome, the first one included.
   */
  private retryAfterFirst(firstFailure: unknown): Promise<ProxyResponse> {
    const input = (attemptNumber: number): Promise<ProxyResponse> =>
      attemptNumber === 1 ? Promise.reject(firstFailure) : this.attempt(attemptNumber);
    const shouldRetry = (context: RetryContext): Promise<boolean> => this.shouldRetry(context);
    return pRetry(input, { retries: this.settings.maxRetries, minTimeout: 0, factor: 1, shouldRetry });
  }

  /** The `ERR_DEADLINE` the run ended with, once its deadline passed; else `null`. */
  private expired(): RelayError | null {
    return this.deadline?.error ?? null;
  }

  /** Chooses how the body is sent on each attempt; buffers it when it is small enough. */
  private async prepareBody(): Promise<void> {
    const { body, replayBody } = this.request;
    if (body === null) return;
    if (replayBody !== null) {
      this.mode = BodyMode.Replayable;
      return;
    }
    const limit = this.settings.maxReplayBytes;
    const declared = this.headers['content-length'];
    // Too large to keep (or buffering is off): it streams at once, and is resent only if no byte was read.
    if (limit === 0 || (declared !== undefined && Number(declared) > limit)) {
      this.mode = BodyMode.Stream;
      return;
    }
    // A client that sent `Expect: 100-continue` end to end waits for the 100 before its body, and the
    // body is read before any attempt: the relay answers 100 itself, as nginx does when it buffers.
    if (this.headers.expect !== undefined) {
      delete this.headers.expect;
      this.request.client.sendContinue();
    }
    this.collector = new BodyCollector(body, limit, this.settings.stallTimeout);
    const bytes = await this.collector.collect();
    this.collector = null;
    if (bytes === null) {
      // A chunked body that outgrew the limit: what was read is back in the stream, which now flows once.
      this.mode = BodyMode.Stream;
      this.watchTransportRead(body);
      return;
    }
    this.mode = BodyMode.Buffered;
    this.bytes = bytes;
    this.replay = () => new ReplayStream(bytes);
    // A buffered body is sent with its exact length, unless it ended with trailer fields (known now
    // that it was read): those only follow a chunked body, so it is sent chunked, trailers after it.
    if (!endedWithTrailers(this.request)) this.headers['content-length'] = String(bytes.length);
  }

  /** The body stream for one attempt. */
  private bodyFor(attemptNumber: number): ProxyRequest['body'] {
    const request = this.request;
    switch (this.mode) {
      case BodyMode.None:
        return null;
      case BodyMode.Buffered:
        return this.bytes!.length === 0 ? null : new ReplayStream(this.bytes!);
      case BodyMode.Replayable:
        return attemptNumber === 1 ? request.body : request.replayBody!();
      case BodyMode.Stream:
        // A response may have come before the body was read: detach it from that attempt first.
        if (attemptNumber > 1) request.body!.unpipe();
        return request.body;
    }
  }

  /**
   * A body the collector read past the limit and put back (paused) has `readableDidRead` set
   * already: what tells that an attempt took it is the transport's pipe, which resumes it.
   */
  private watchTransportRead(body: Readable): void {
    this.putBack = true;
    body.once('resume', () => (this.takenByAttempt = true));
  }

  /** Whether the body can be sent again, whole: no attempt has read a byte of it. */
  private canResend(): boolean {
    if (this.mode !== BodyMode.Stream) return true;
    const body = this.request.body!;
    if (body.readableEnded || body.destroyed) return false;
    return this.putBack ? !this.takenByAttempt : !body.readableDidRead;
  }

  /** One attempt: throws a `RetryableResponse` for a retryable status, a `RelayError` for a failure. */
  private async attempt(attemptNumber: number): Promise<ProxyResponse> {
    const request = this.request;
    const client = request.client;
    if (client.aborted) throw client.abortReason!;
    const expired = this.expired();
    if (expired !== null) throw expired;
    const attempt: ProxyRequest = {
      method: request.method,
      path: request.path,
      headers: copyHeaders(this.headers),
      body: this.bodyFor(attemptNumber),
      replayBody: this.mode === BodyMode.Buffered ? this.replay : this.mode === BodyMode.Replayable ? request.replayBody : null,
      attempt: request.attempt + attemptNumber - 1,
      // What an outer stage chose stays chosen on every attempt: the target (a router's), the trailer fields.
      target: request.target,
      trailers: request.trailers,
      // A streamed body is read only once the attempt is connected: one whose connection failed is resent whole.
      bodyRead: this.mode === BodyMode.Stream ? 'connected' : request.bodyRead,
      // The run's deadline cuts its own attempts only; an outer stage's bound reaches them through it.
      bound: this.deadline === null ? request.bound : this.deadline.bound,
      client,
    };
    this.lastAttempt = attempt;
    let response: ProxyResponse;
    try {
      response = await this.settings.next(attempt);
    } catch (error) {
      throw toRelayError(error);
    }
    const late = client.abortReason ?? this.expired();
    if (late !== null) {
      // The deadline passed (or the client left) as the head arrived: the response is not used.
      discard(response);
      throw late;
    }
    if (this.settings.rules.policy.retriesStatus(response.status)) throw new RetryableResponse(response);
    return response;
  }

  /**
   * p-retry's `shouldRetry`, called only while retries are left: decides, logs, discards a response
   * retried past, and waits the backoff (cut short when the client goes away or the deadline passes).
   */
  private async shouldRetry(context: RetryContext): Promise<boolean> {
    const { error, attemptNumber } = context;
    const request = this.request;
    const response = error instanceof RetryableResponse ? error.response : null;
    const outcome = response === null ? { method: request.method, error } : { method: request.method, status: response.status, headers: response.headers };
    if (!this.canResend() || this.expired() !== null) return false;
    // attemptNumber counts this run's attempts from 1, as the rules do: attempt n may be followed by retry n.
    // The response's record is the relay's own, with lowercase names.
    const decision = decideRetry(this.settings.rules, attemptNumber, outcome);
    if (decision === null || !fitsDeadline(this.settings.deadline, this.startedAt, decision.delay)) return false;
    if (response !== null) {
      // With a streamed body the old attempt may still wait for it: only destroying frees its connection.
      discard(response, this.mode === BodyMode.Stream);
      // Its transport is done with this run: a deadline that passes while the next attempt is still in
      // an inner stage then finds none of the run's attempts in flight, and that one is cut before it is
      // sent (which a balancer does not count against its target).
      request.client.setAbortHandler(null);
    }
    this.settings.logger.info(
      {
        method: request.method,
        url: this.failedOrigin() + loggedPath(request.path, this.settings),
        attempt: request.attempt + attemptNumber - 1,
        reason: decision.reason,
        delay: decision.delay,
        retryAfter: decision.retryAfter,
      },
      'retrying upstream request',
    );
    await wait(decision.delay, request.client);
    return true;
  }

  /**
   * The upstream the failed attempt went to, as the core's own failure line names it: the target a
   * stage inside chose (a balancer's member), else one an outer stage chose (a router's), else the relay's.
   */
  private failedOrigin(): string {
    return (this.lastAttempt?.target ?? this.request.target ?? this.settings.target).origin;
  }
}

/** Largest retried-past response body drained to keep its keep-alive connection; larger or unknown ones are destroyed. */
const drainLimit = 64 * 1024;

/**
 * Lets go of a response that is retried past, so its socket is not leaked: a small body of known
 * length is drained (the connection returns to the pool), any other is destroyed.
 */
function discard(response: ProxyResponse, destroy = false): void {
  const body = response.body;
  if (body === null || body.destroyed) return;
  body.on('error', ignoreError);
  const length = destroy ? Number.NaN : Number(response.headers['content-length']);
  if (length >= 0 && length <= drainLimit) body.resume();
  else body.destroy();
}

function ignoreError(): void {}

/** Waits `ms`, rejecting with the abort reason as soon as the client goes away or the deadline passes. */
function wait(ms: number, client: ClientInfo): Promise<void> {
  if (client.aborted) return Promise.reject(client.abortReason!);
  if (ms <= 0) return Promise.resolve();
  // The signal is made only here, when a retry waits: the common path never pays for it.
  return waitUnlessAborted(ms, client.signal);
}

/**
 * Whether the buffered body ended with trailer fields. Trailers a stage made unreadable (a throwing
 * `trailers()`) are none here: the transport drops them with a log line, and the body is whole.
 */
function endedWithTrailers(request: ProxyRequest): boolean {
  try {
    return (request.trailers?.() ?? null) !== null;
  } catch {
    return false;
  }
}
