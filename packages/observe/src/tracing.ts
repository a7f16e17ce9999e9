import {
  SpanKind,
  SpanStatusCode,
  context as contextApi,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import http from 'node:http';
import https from 'node:https';
import type { Handler, HeaderRecord, Logger, ProxyRequest, ProxyResponse, RelayError, StageContext, Target } from '@relay/core';
import { checkOptions, readBoolean, readChoice } from './options.js';
import { createObservation, type Observation, type ObserverFactory } from './observation.js';
import { logObserverFailure, shareTraceIds, type AttemptRunner, type Observer, type RequestRecord } from './record.js';
import { targetPath } from './routes.js';

/** Options of `tracing()` (and of `observe({ tracing })`). */
export interface TracingOptions {
  /** Where spans go. Default the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /**
   * Injects `traceparent`/`tracestate` upstream, and extracts the client's: the parent of the SERVER
   * span, or of the attempts when no span is active. Default the global propagator.
   */
  propagator?: TextMapPropagator;
  /**
   * Make a SERVER span per client request, for apps without HTTP server instrumentation: made only
   * when no span is active (an instrumentation's is the request's). Default `false`.
   */
  serverSpan?: boolean;
  /** Keep the query string in `url.full`. Default `false`. */
  includeQuery?: boolean;
  /**
   * When the transport runs inside the attempt span's context: `auto` when a span was already
   * active (your HTTP server instrumentation's), `always`, or `never`. Default `auto`.
   */
  attemptContext?: AttemptContextMode;
}

/** When an attempt runs inside its span's context (`tracing({ attemptContext })`). */
export type AttemptContextMode = 'auto' | 'always' | 'never';

const optionNames = ['tracerProvider', 'propagator', 'serverSpan', 'includeQuery', 'attemptContext'] as const;
const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT']);

interface TracingSettings {
  provider: TracerProvider | null;
  propagator: Pick<TextMapPropagator, 'inject' | 'extract'> & Partial<Pick<TextMapPropagator, 'fields'>>;
  serverSpan: boolean;
  includeQuery: boolean;
  attemptContext: AttemptContextMode;
}

/** Reads and checks `tracing()` options. */
export function tracingSettings(options: TracingOptions): TracingSettings {
  checkOptions(options, optionNames, 'tracing()');
  const provider = options.tracerProvider ?? null;
  if (provider !== null && typeof provider.getTracer !== 'function') throw new TypeError('tracerProvider must be an OpenTelemetry TracerProvider');
  const propagator = options.propagator ?? propagation;
  if (typeof propagator.inject !== 'function' || typeof propagator.extract !== 'function') {
    throw new TypeError('propagator must be an OpenTelemetry TextMapPropagator');
  }
  return {
    provider,
    propagator,
    serverSpan: readBoolean(options.serverSpan, false, 'serverSpan'),
    includeQuery: readBoolean(options.includeQuery, false, 'includeQuery'),
    attemptContext: readChoice(options.attemptContext, ['auto', 'always', 'never'] as const, 'auto', 'attemptContext'),
  };
}

/** The tracing as an observer factory, for `observe()`. */
export function tracingFactory(settings: TracingSettings): ObserverFactory {
  return {
    bind(context: StageContext): TracingObserver {
      const provider = settings.provider ?? trace.getTracerProvider();
      return new TracingObserver(settings, provider.getTracer('@relay/observe', '0.1.0'), context.target, context.logger);
    },
  };
}

/**
 * The client's headers as the propagator reads them. `traceparent` is one value, never a list:
 * two lines of it (an array here, as core keeps repeated headers) or a value with a comma (lines
 * that a front joined) are no traceparent, and the trace starts anew (the W3C test suite's
 * `test_traceparent_duplicated`). The W3C propagator alone would continue the first line's trace.
 * A single line, the usual case, costs a comparison and an `indexOf`.
 */
/** Writes a propagator's fields under lowercase names, where the client's own field of that name was deleted. */
const lowercaseSetter: TextMapSetter<HeaderRecord> = {
  set(carrier, key, value) {
    carrier[key.toLowerCase()] = value;
  },
};

const clientHeaders: TextMapGetter<HeaderRecord> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    // Header records are lowercase; a propagator may name its field `X-Amzn-Trace-Id`.
    const value = carrier[key] ?? carrier[key.toLowerCase()];
    if (key !== 'traceparent' || value === undefined) return value;
    return typeof value === 'string' && value.indexOf(',') < 0 ? value : undefined;
  },
};

/** The semantic-convention method: a known one, else `_OTHER` (the original goes in `http.request.method_original`). */
function methodAttributes(method: string, attributes: Attributes): void {
  if (knownMethods.has(method)) {
    attributes['http.request.method'] = method;
    return;
  }
  attributes['http.request.method'] = '_OTHER';
  attributes['http.request.method_original'] = method;
}

class TracingObserver implements Observer, AttemptRunner {
  /** No access log shares this observation's records: the ids go on the client for a separate one. */
  private shareIds = true;
  /** The propagator's header names, asked once at the first attempt (the W3C one builds a new array per call). */
  private fields: readonly string[] | null = null;

  constructor(
    readonly settings: TracingSettings,
    readonly tracer: Tracer,
    readonly target: Target,
    readonly logger: Logger,
  ) {}

  bound(siblings: readonly Observer[]): void {
    this.shareIds = !siblings.some((observer) => observer.logsTraceIds === true);
  }

  start(record: RequestRecord): void {
    if (this.shareIds) shareTraceIds(record);
    const active = contextApi.active();
    const server = trace.getSpan(active);
    // A span is active (an HTTP server instrumentation's SERVER span): it is the request's, and the
    // attempts go under it. `serverSpan` makes one only when none is: a second SERVER span, child of
    // the client's `traceparent`, would take the attempts from under the instrumentation's.
    if (server !== undefined) noteSpan(record, server);
    else if (this.settings.serverSpan) this.startServerSpan(record, active);
    // No SERVER span at all: the attempts continue the client's trace (its `traceparent`), as a
    // proxy in the middle of a trace does, instead of starting a new one.
    else record.parentContext = this.settings.propagator.extract(active, record.request.headers, clientHeaders);
  }

  /** A SERVER span for the client's request, child of the client's `traceparent`: the attempts' parent. */
  private startServerSpan(record: RequestRecord, active: Context): void {
    const request = record.request;
    const parent = this.settings.propagator.extract(active, request.headers, clientHeaders);
    const path = request.client.originalUrl;
    const query = path.indexOf('?');
    const attributes: Attributes = {
      'url.path': targetPath(path),
      'url.scheme': request.client.scheme,
      'client.address': request.client.clientAddress,
    };
    methodAttributes(request.method, attributes);
    if (this.settings.includeQuery && query >= 0) attributes['url.query'] = path.slice(query + 1);
    const span = this.tracer.startSpan(knownMethods.has(request.method) ? request.method : 'HTTP', { kind: SpanKind.SERVER, attributes }, parent);
    record.serverSpan = span;
    record.parentContext = trace.setSpan(parent, span);
    noteSpan(record, span);
  }

  attemptStart(): void {}

  /** Sends one attempt as a CLIENT span, with the span's `traceparent` in the request headers. */
  runAttempt(record: RequestRecord, next: Handler, request: ProxyRequest): Promise<ProxyResponse> {
    // A previous attempt whose response a retry discarded: it ends at its response head, not
    // after the backoff (its head came at `attemptEndedAt`, still the previous attempt's here).
    discardAttemptSpan(record);
    const active = contextApi.active();
    let spanContext: Context;
    try {
      spanContext = this.openAttemptSpan(record, request, active);
    } catch (error) {
      // A tracer or propagator that throws costs the trace, never the request (as every observer's failure).
      record.attemptSpan = null;
      logObserverFailure(this.logger, error);
      return next(request);
    }
    return this.entersContext(active) ? contextApi.with(spanContext, next, undefined, request) : next(request);
  }

  /** The attempt's CLIENT span, child of the request's parent, with its `traceparent` in the request headers. */
  private openAttemptSpan(record: RequestRecord, request: ProxyRequest, active: Context): Context {
    const parent = (record.parentContext as Context | null) ?? active;
    const span = this.tracer.startSpan(
      knownMethods.has(request.method) ? request.method : 'HTTP',
      { kind: SpanKind.CLIENT, attributes: this.attemptAttributes(record, request) },
      parent,
    );
    record.attemptSpan = span;
    // No SERVER span (ours or an instrumentation's, noted at the start): the access line points at the last attempt.
    if (record.serverSpan === null && record.parentContext !== null) noteSpan(record, span);
    const spanContext = trace.setSpan(parent, span);
    const headers = request.headers as HeaderRecord;
    // The client's own fields go: a `tracestate` without a valid `traceparent` MUST be dropped (W3C
    // Trace Context §4.2), and a valid one is in the span's context, which inject writes again.
    const fields = (this.fields ??= (this.settings.propagator.fields?.() ?? []).map((field) => field.toLowerCase()));
    for (let index = 0; index < fields.length; index++) {
      if (headers[fields[index]!] !== undefined) delete headers[fields[index]!];
    }
    this.settings.propagator.inject(spanContext, headers, lowercaseSetter);
    return spanContext;
  }

  /**
   * Entering a context switches AsyncLocalStorage on for the whole process: a hook on every
   * promise and async resource from then on (7 % of the bench row's CPU). `auto` enters only
   * when a span is active already (an HTTP server instrumentation's), where that cost is paid
   * anyway and an HTTP client instrumentation under the transport must see the attempt span.
   * (A span, not `active !== ROOT_CONTEXT`: the API's ESM and CommonJS builds each have a root.)
   */
  private entersContext(active: Context): boolean {
    const mode = this.settings.attemptContext;
    return mode === 'always' || (mode === 'auto' && (trace.getSpan(active) !== undefined || clientInstrumented()));
  }

  private attemptAttributes(record: RequestRecord, request: ProxyRequest): Attributes {
    const path = request.path;
    const query = this.settings.includeQuery ? -1 : path.indexOf('?');
    // A balancer's choice of target for this attempt, else the relay's own.
    const target = request.target ?? this.target;
    const url = target.origin + (query < 0 ? path : path.slice(0, query));
    record.attemptSpanTarget = target;
    record.attemptSpanUrl = url;
    const attributes: Attributes = { 'url.full': url, 'server.address': target.hostname, 'server.port': target.port };
    methodAttributes(request.method, attributes);
    if (record.attempts > 1) attributes['http.request.resend_count'] = record.attempts - 1;
    return attributes;
  }

  attemptEnd(record: RequestRecord, status: number, error: RelayError | null): void {
    const span = record.attemptSpan as Span | null;
    if (span === null) return;
    // A span the sampler dropped records nothing: only its end is left to do.
    if (!span.isRecording()) {
      if (error !== null) endAttemptSpan(record);
      return;
    }
    const chosen = record.attemptTarget;
    if (chosen !== null && chosen !== record.attemptSpanTarget) renameServer(span, record, chosen);
    if (error !== null) {
      span.setAttribute('error.type', error.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      endAttemptSpan(record);
      return;
    }
    span.setAttribute('http.response.status_code', status);
    if (status >= 400) {
      // A client span is an error from 400 on (semantic conventions, HTTP client spans).
      span.setAttribute('error.type', String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }

  sessionOpen(record: RequestRecord): void {
    // The handshake is what is traced; the session's life is in the access log and the metrics.
    this.end(record);
  }

  end(record: RequestRecord): void {
    const attempt = record.attemptSpan as Span | null;
    if (attempt !== null && record.code !== null && record.status < 400 && attempt.isRecording()) {
      attempt.setAttribute('error.type', record.code);
      attempt.setStatus({ code: SpanStatusCode.ERROR, message: 'response body broke off' });
    }
    if (attempt !== null && record.grpcStatus !== null) grpcOutcome(attempt, record.grpcStatus);
    endAttemptSpan(record);
    const server = record.serverSpan as Span | null;
    if (server === null) return;
    record.serverSpan = null;
    // Only a status that was sent (semantic conventions): 499 is the log's name for a client that left before any.
    if (record.status !== 499 || record.code !== 'ERR_CLIENT_ABORTED') server.setAttribute('http.response.status_code', record.status);
    if (serverFailed(record)) {
      server.setAttribute('error.type', record.code ?? String(record.status));
      server.setStatus({ code: SpanStatusCode.ERROR });
    }
    if (record.grpcStatus !== null) grpcOutcome(server, record.grpcStatus);
    server.end();
  }
}

/**
 * The attempt went to another server than the span named when it started: a balancer inside
 * observe's attempt stage chose it after (its README puts it innermost). `url.full`,
 * `server.address` and `server.port` name where the attempt went.
 */
function renameServer(span: Span, record: RequestRecord, chosen: Target): void {
  const opened = record.attemptSpanTarget!;
  span.setAttributes({
    'url.full': chosen.origin + record.attemptSpanUrl.slice(opened.origin.length),
    'server.address': chosen.hostname,
    'server.port': chosen.port,
  });
}

/**
 * A SERVER span is an error from 500 on, or when the client got no whole answer (it left: 499,
 * or the body broke off); a 4xx is the client's error, not the server's (semantic conventions,
 * HTTP server spans), even when it has a code (bodyLimit's 413, rateLimit's 429).
 */
function serverFailed(record: RequestRecord): boolean {
  return record.status >= 500 || (record.code !== null && (record.status < 400 || record.status === 499));
}

/**
 * A gRPC call's status on its span (semantic conventions, RPC spans): `rpc.grpc.status_code`,
 * and ERROR for any status but OK, which an HTTP 200 alone would hide.
 */
function grpcOutcome(span: Span, status: number): void {
  if (!span.isRecording()) return;
  span.setAttribute('rpc.grpc.status_code', status);
  if (status !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: `grpc-status ${status}` });
}

type Wrapped = { __wrapped?: boolean };

/**
 * An HTTP client instrumentation (OpenTelemetry's `instrumentation-http`, which wraps with
 * shimmer's `__wrapped` mark) has wrapped node:http's requests: it parents its span on the active
 * context and injects its own `traceparent` over the relay's, so the attempt must run inside its
 * span's context, or the upstream would start a new trace (a WebSocket handshake, which the server
 * instrumentation does not trace, or no server instrumentation at all). A context manager is
 * registered then anyway. Two property reads per attempt.
 */
function clientInstrumented(): boolean {
  return (http.request as Wrapped).__wrapped === true || (https.request as Wrapped).__wrapped === true;
}

/**
 * The span's ids into the record, for the access line. Only valid ones (hex of the right length,
 * not all zeros): a span with no SDK and no parent has none, and a lax propagator must not put
 * text of a client's choosing into a log line.
 */
function noteSpan(record: RequestRecord, span: Span): void {
  const ids = span.spanContext();
  if (!trace.isSpanContextValid(ids)) return;
  record.traceId = ids.traceId;
  record.spanId = ids.spanId;
}

function discardAttemptSpan(record: RequestRecord): void {
  const span = record.attemptSpan as Span | null;
  if (span === null) return;
  record.attemptSpan = null;
  // A `performance.now()` time: the SDK reads numbers below the time origin as such.
  span.end(record.attemptEndedAt);
}

function endAttemptSpan(record: RequestRecord): void {
  const span = record.attemptSpan as Span | null;
  if (span === null) return;
  record.attemptSpan = null;
  span.end();
}

/**
 * OpenTelemetry traces with `@opentelemetry/api`: a CLIENT span per upstream attempt, child of
 * the active context (your HTTP server instrumentation's span), of a SERVER span it makes when
 * `serverSpan` is set, or else of the client's `traceparent` (the client's trace continues); HTTP
 * semantic-convention attributes (`http.request.method`, `url.full` without the query,
 * `server.address`, `server.port`, `http.response.status_code`, `error.type`,
 * `http.request.resend_count`); `traceparent`/`tracestate` injected upstream through the
 * propagator. WebSocket handshakes are traced too. The parent is passed explicitly, so no context
 * manager is needed; the transport runs inside the attempt span's context only when a span was
 * already active (`attemptContext`). Stages: `[t.request, retry(), t.attempt]`.
 *
 * @example
 * const t = tracing({ serverSpan: true });
 * createRelay({ targetBaseUrl: 'http://api:8000', stages: [t.request, retry({ maxRetries: 2 }), t.attempt] });
 */
export function tracing(options: TracingOptions = {}): Observation {
  return createObservation([tracingFactory(tracingSettings(options))], null);
}
