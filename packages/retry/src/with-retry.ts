import pRetry, { type RetryContext } from 'p-retry';
import { RelayError, type Logger } from '@relay/core';
import { compileRetryRules, deadlineError, decideRetry, fitsDeadline, waitUnlessAborted, type RetryOptions, type RetryOutcome, type RetryRules } from './retry-rules.js';

/** Options of `withRetry`: those of `retry()` (but `maxReplayBytes`: the call builds its own body), and the call's method. */
export interface WithRetryOptions extends Omit<RetryOptions, 'maxReplayBytes'> {
  /** The HTTP method the call sends. Required: only the methods in `methods` (the idempotent ones by default) are sent more than once. */
  method: string;
  /** Ends the run when it fires: the attempt in flight is aborted and `withRetry` rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Told each retry at `info`, as the stage logs it (`retrying upstream request`). Default: silent. */
  logger?: Logger;
}

/** What each attempt is given. */
export interface RetryAttempt {
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Fires when the deadline passes or `options.signal` fires: pass it to `fetch` so the attempt stops. */
  readonly signal: AbortSignal;
}

/**
 * Calls `call` until it succeeds, by the rules of `retry()`: only idempotent methods (or those in
 * `methods`) are called again; a result with a retried `status` (a fetch `Response`, any object
 * with a numeric `status`) or a thrown error with one (`status` or `statusCode`, as SDK errors
 * have) is retried, its `Retry-After` honoured; a thrown network error is retried when its code
 * is in `errors` (fetch's `fetch failed` is read from its cause). Backoff with jitter between
 * attempts; p-retry is the loop. A result retried past has its body drained (up to 64 KiB) or
 * cancelled, so its connection is not held. When retries run out, the last result is returned (or the last error thrown), as the
 * stage passes the last response on.
 *
 * `deadline` bounds all attempts and waits together: when it passes, the attempt's `signal` fires
 * and `withRetry` rejects with a `RelayError` `ERR_DEADLINE` at once, even if `call` ignores the
 * signal. `call` must build its request afresh on each attempt (a stream body cannot be sent twice).
 * Invalid options throw at once (TypeError or RangeError naming the option), before any call.
 *
 * @example
 * const response = await withRetry(({ signal }) => fetch('http://api:8000/items', { signal }), {
 *   method: 'GET',
 *   maxRetries: 3,
 *   jitter: true,
 *   deadline: 5_000,
 * });
 */
export function withRetry<T>(call: (attempt: RetryAttempt) => Promise<T>, options: WithRetryOptions): Promise<T> {
  if (typeof call !== 'function') throw new TypeError('withRetry(call, options) needs a function to call');
  if (options === null || typeof options !== 'object') throw new TypeError('withRetry(call, options) needs an options object');
  if (Object.hasOwn(options, 'maxReplayBytes')) throw new TypeError('withRetry: maxReplayBytes does not apply: the call builds its request body on each attempt');
  const rules = compileRetryRules(options, 'withRetry', ['method', 'signal', 'logger']);
  const method = checkMethod(options.method);
  const outer = checkSignal(options.signal);
  const logger = options.logger ?? null;
  if (logger !== null && typeof (logger as Partial<Logger>).info !== 'function') throw new TypeError('withRetry: logger must be a pino-style logger with an info method');
  return new CallRun(call, rules, method, logger).run(outer);
}

function checkMethod(value: unknown): string {
  if (typeof value !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) {
    throw new TypeError(`withRetry: method must be the HTTP method the call sends, such as "GET" or "POST", got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`);
  }
  return value.toUpperCase();
}

function checkSignal(value: unknown): AbortSignal | null {
  if (value === undefined) return null;
  if (!(value instanceof AbortSignal)) throw new TypeError('withRetry: signal must be an AbortSignal');
  return value;
}

/** A result with a retried status, thrown inside the p-retry loop so p-retry counts it; unwrapped at the end. */
class RetryableResult extends Error {
  constructor(
    readonly result: unknown,
    readonly status: number,
  ) {
    super(`the call answered ${status}`);
  }
}

/** A signal's reason that is not an Error (`abort('the user left')`), carried through p-retry, which would turn it into a TypeError; unwrapped at the end. */
class AbortedWith extends Error {
  constructor(readonly reason: unknown) {
    super('aborted');
  }
}

/** The reason to reject with when `signal` fired: an Error as it is, anything else wrapped for the trip through p-retry. */
function abortReason(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new AbortedWith(reason);
}

/** One `withRetry` call: its deadline, its abort signal and its p-retry loop. */
class CallRun<T> {
  private readonly controller = new AbortController();
  private startedAt = 0;

  constructor(
    private readonly call: (attempt: RetryAttempt) => Promise<T>,
    private readonly rules: RetryRules,
    private readonly method: string,
    private readonly logger: Logger | null,
  ) {}

  async run(outer: AbortSignal | null): Promise<T> {
    const { controller, rules } = this;
    const abort = (): void => controller.abort(outer!.reason);
    if (outer !== null) {
      if (outer.aborted) throw outer.reason;
      outer.addEventListener('abort', abort, { once: true });
    }
    this.startedAt = performance.now();
    const timer = rules.deadline > 0 ? setTimeout(() => controller.abort(deadlineError(rules.deadline)), rules.deadline) : null;
    try {
      const input = (attemptNumber: number): Promise<T> => this.attempt(attemptNumber);
      const shouldRetry = (context: RetryContext): Promise<boolean> => this.shouldRetry(context);
      return await pRetry(input, { retries: rules.maxRetries, minTimeout: 0, factor: 1, shouldRetry });
    } catch (error) {
      if (error instanceof RetryableResult) return error.result as T;
      throw error instanceof AbortedWith ? error.reason : error;
    } finally {
      if (timer !== null) clearTimeout(timer);
      outer?.removeEventListener('abort', abort);
    }
  }

  /** One call: throws a `RetryableResult` for a result with a retried status. */
  private async attempt(attemptNumber: number): Promise<T> {
    const signal = this.controller.signal;
    if (signal.aborted) throw abortReason(signal);
    const result = await settleOrAbort(this.call({ attempt: attemptNumber, signal }), signal);
    const status = (result as { status?: unknown } | null)?.status;
    if (typeof status === 'number' && this.rules.policy.retriesStatus(status)) throw new RetryableResult(result, status);
    return result;
  }

  private async shouldRetry(context: RetryContext): Promise<boolean> {
    const { error, attemptNumber } = context;
    const signal = this.controller.signal;
    if (signal.aborted) return false;
    const decision = decideRetry(this.rules, attemptNumber, this.outcome(error));
    if (decision === null || !fitsDeadline(this.rules.deadline, this.startedAt, decision.delay)) return false;
    if (error instanceof RetryableResult) release(error.result);
    this.logger?.info(
      { method: this.method, attempt: attemptNumber, reason: decision.reason, delay: decision.delay, retryAfter: decision.retryAfter },
      'retrying upstream request',
    );
    await waitUnlessAborted(decision.delay, signal);
    return true;
  }

  /** How an attempt ended: a result with a status, an error with one (an SDK's), or a failure. */
  private outcome(error: unknown): RetryOutcome {
    if (error instanceof RetryableResult) return { method: this.method, status: error.status, headers: headersOf(error.result) };
    const status = statusOfError(error);
    if (status !== undefined) return { method: this.method, status, headers: headersOf(error) };
    return { method: this.method, error };
  }
}

/** The status an SDK error carries (`status` or `statusCode`); a `RelayError`'s is its code's, not a response's. */
function statusOfError(error: unknown): number | undefined {
  if (error === null || typeof error !== 'object' || error instanceof RelayError) return undefined;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  if (typeof status === 'number') return status;
  return typeof statusCode === 'number' ? statusCode : undefined;
}

function headersOf(value: unknown): RetryOutcome['headers'] {
  const headers = (value as { headers?: unknown } | null)?.headers;
  return headers !== null && typeof headers === 'object' ? (headers as RetryOutcome['headers']) : undefined;
}

/** The call's result, or the signal's reason as soon as it fires (a call that ignores the signal cannot hold the run). */
function settleOrAbort<T>(pending: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(abortReason(signal));
      // The call may still answer: let its body go when it does.
      pending.then(release, ignore);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) release(result);
        else resolve(result);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Largest retried-past fetch body read to its end to keep its keep-alive connection, as the stage drains; larger or unknown ones are cancelled. */
const drainLimit = 64 * 1024;

/**
 * Lets go of a result that is not returned, so its connection is not held until garbage collection:
 * a small fetch body of known length is read to its end (the connection goes back to the pool),
 * any other fetch body is cancelled, a Node stream destroyed.
 */
function release(result: unknown): void {
  const body = (result as { body?: unknown } | null)?.body as { cancel?: unknown; destroy?: unknown; locked?: boolean } | null | undefined;
  if (body === null || body === undefined || typeof body !== 'object') return;
  if (typeof body.cancel === 'function') {
    if (body.locked === true) return;
    const response = result as { headers?: unknown; arrayBuffer?: unknown };
    const length = response.headers instanceof Headers ? Number(response.headers.get('content-length') ?? Number.NaN) : Number.NaN;
    if (length >= 0 && length <= drainLimit && typeof response.arrayBuffer === 'function') (response.arrayBuffer as () => Promise<unknown>).call(result).catch(ignore);
    else (body.cancel as () => Promise<void>).call(body).catch(ignore);
  } else if (typeof body.destroy === 'function') (body.destroy as () => void).call(body);
}

function ignore(): void {}
