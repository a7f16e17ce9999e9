import type { EventEmitter } from 'node:events';
import { errorBody, RelayError, silentLogger, type Logger, type ProxyRequest, type RequestRefusedMessage, type StageContext } from '@relay/core';
import { checkOptions, readChoice, readString, readStringList } from './options.js';
import { createObservation, type Observation, type ObserverFactory } from './observation.js';
import { tracedRecord, type Observer, type RequestRecord } from './record.js';
import { requestIdOf } from './request-id.js';
import { headerValue, loggedPath, pickHeaders, type LoggedHeaders, type QueryMode } from './redact.js';
import { clfTime, isoTime, JsonMemo, jsonString, jsonStringOf } from './text.js';

/** Where raw access log lines go (`process.stdout`, a file stream …): one line per call, `\n`-terminated. */
export interface LineSink {
  write(line: string): unknown;
}

/** A log level of a pino-style logger. */
export type AccessLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Options of `accessLog()` (and of `observe({ accessLog })`). */
export interface AccessLogOptions {
  /** A pino-style logger for the lines. Default: the relay's `logger`. */
  logger?: Logger;
  /** Write each line as text here instead of calling a logger (JSON or Combined Log Format). */
  stream?: LineSink;
  /** `json` (one object per line) or `combined` (Apache/nginx Combined Log Format). Default `json`. */
  format?: 'json' | 'combined';
  /** The logger level of the lines. Default `info`. */
  level?: AccessLogLevel;
  /** The message of each line (pino's `msg`). Default `request`. */
  message?: string;
  /** Query strings: `redact` keeps names and hides values, `drop` removes them, `keep` logs them. Default `redact`. */
  query?: QueryMode;
  /**
   * The client's request headers logged under `headers` (JSON format), as the client sent them.
   * The Referer's query is treated as the request's (`query`). Default `['user-agent', 'referer']`.
   */
  headers?: readonly string[];
  /**
   * More headers whose values are logged as `[REDACTED]`, in both formats. Authorization,
   * proxy-authorization, cookie, set-cookie and x-api-key always are.
   */
  redactHeaders?: readonly string[];
}

/** The fields of one JSON access log line. */
export interface AccessLogFields {
  method: string;
  /** The request target as the client sent it, query redacted by default. */
  path: string;
  /** The status the client got: the upstream's, the relay's error status, 499 when the client left first, 101 for a WebSocket session. */
  status: number;
  /** Request body bytes read from the client (a WebSocket session: bytes the client sent). */
  bytesIn: number;
  /** Response body bytes sent to the client (a WebSocket session: bytes sent to the client). */
  bytesOut: number;
  /** Milliseconds from the request stage to the end of the response body (a WebSocket session: to its close). */
  duration: number;
  /** Milliseconds from the request stage to the last attempt's response head; `null` when no head came. */
  ttfb: number | null;
  /** The upstream origin. */
  upstream: string;
  /** Upstream attempts sent (retries included). */
  attempts: number;
  /** The Relay error code when the request failed or its response body broke off, else `null`. */
  code: string | null;
  /** A gRPC call's `grpc-status` (0 OK, 5 NOT_FOUND, 14 UNAVAILABLE …; Envoy's `%GRPC_STATUS%`), `null` for other requests. */
  grpcStatus: number | null;
  /**
   * The client's address: behind proxies the relay trusts (`trustProxy`), the one their
   * `X-Forwarded-For` names (`ClientInfo.clientAddress`, nginx's realip); else the socket's peer.
   */
  client: string;
  /** The request id (`requestId()`), `null` without one. */
  requestId: string | null;
  /** The request's trace id when `tracing` is on and the trace is valid, else `null`: the log line's link to its trace. */
  traceId: string | null;
  /** The request's SERVER span id (an instrumentation's or `serverSpan`'s), else its last attempt's; `null` with no trace. */
  spanId: string | null;
  /** True on the line of a WebSocket session, written when the session closes. */
  websocket: boolean;
  /** The `headers` option's request headers as the client sent them, secrets redacted. */
  headers: Record<string, string | undefined>;
}

const optionNames = ['logger', 'stream', 'format', 'level', 'message', 'query', 'headers', 'redactHeaders'] as const;
const levels: readonly AccessLogLevel[] = ['debug', 'info', 'warn', 'error'];
const defaultRedacted = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'];

interface AccessLogSettings {
  logger: Logger | null;
  stream: LineSink | null;
  format: 'json' | 'combined';
  level: AccessLogLevel;
  message: string;
  query: QueryMode;
  headers: string[];
  secret: Set<string>;
}

/** Reads and checks `accessLog()` options. */
export function accessLogSettings(options: AccessLogOptions): AccessLogSettings {
  checkOptions(options, optionNames, 'accessLog()');
  const logger = options.logger ?? null;
  if (logger !== null && levels.some((level) => typeof logger[level] !== 'function')) {
    throw new TypeError('logger must be a pino-style logger with debug, info, warn and error methods');
  }
  const stream = options.stream ?? null;
  if (stream !== null && typeof stream.write !== 'function') throw new TypeError('stream must have a write(line) method');
  if (logger !== null && stream !== null) throw new TypeError('give accessLog() a logger or a stream, not both');
  return {
    logger,
    stream,
    format: readChoice(options.format, ['json', 'combined'] as const, 'json', 'format'),
    level: readChoice(options.level, levels, 'info', 'level'),
    message: readString(options.message, 'request', 'message'),
    query: readChoice(options.query, ['redact', 'keep', 'drop'] as const, 'redact', 'query'),
    headers: readStringList(options.headers, ['user-agent', 'referer'], 'headers', true),
    secret: new Set([...defaultRedacted, ...readStringList(options.redactHeaders, [], 'redactHeaders', true)]),
  };
}

const guarded = new WeakSet<LineSink>();

/**
 * A stream that fails (a log file on a full or missing disk, a closed pipe) emits `error`, which
 * would end the process with no listener: the relay keeps serving and says so in its log
 * instead, as nginx does when it cannot write its access log. A stream with an `error` listener
 * of its own is left to it.
 */
function guardStream(stream: LineSink, logger: Logger): void {
  const emitter = stream as LineSink & Partial<Pick<EventEmitter, 'on' | 'listenerCount'>>;
  if (typeof emitter.on !== 'function' || typeof emitter.listenerCount !== 'function' || guarded.has(stream)) return;
  guarded.add(stream);
  if (emitter.listenerCount('error') > 0) return;
  emitter.on('error', (error: Error) => {
    logger.error({ code: 'ERR_ACCESS_LOG', error: error.message }, 'the access log stream failed; requests are still served');
  });
}

/** The access log as an observer factory, for `observe()`. */
export function accessLogFactory(settings: AccessLogSettings): ObserverFactory {
  return {
    bind(context: StageContext): Observer {
      const logger = settings.logger ?? context.logger;
      if (settings.stream === null && logger === silentLogger) {
        throw new TypeError('accessLog() has nowhere to write: give the relay a logger, or accessLog({ logger }) or accessLog({ stream })');
      }
      if (settings.stream !== null) guardStream(settings.stream, context.logger);
      return new AccessLogObserver(settings, logger, context.target.origin);
    },
  };
}

class AccessLogObserver implements Observer {
  readonly logsTraceIds = true;
  private readonly message: string;
  private readonly upstreamJson: string;
  /** `,"user-agent":` … : each logged header's name, quoted once (`first`: without the comma). */
  private readonly headerKeys: { readonly first: string; readonly next: string; readonly value: JsonMemo }[];
  private readonly address = new JsonMemo();
  private readonly method = new JsonMemo();

  constructor(
    readonly settings: AccessLogSettings,
    readonly logger: Logger,
    readonly upstream: string,
  ) {
    this.message = jsonString(settings.message);
    this.upstreamJson = jsonString(upstream);
    this.headerKeys = settings.headers.map((name) => ({
      first: `${jsonString(name)}:`,
      next: `,${jsonString(name)}:`,
      value: new JsonMemo(true),
    }));
  }

  start(): void {}
  attemptStart(_record: RequestRecord, _request: ProxyRequest): void {}
  attemptEnd(_record: RequestRecord, _status: number, _error: RelayError | null): void {}
  sessionOpen(): void {}

  refused(message: RequestRefusedMessage): void {
    const settings = this.settings;
    const fields = {
      method: message.method,
      path: message.path,
      status: message.status,
      bytesIn: 0,
      bytesOut: refusedBodyBytes(message),
      duration: 0,
      ttfb: null,
      upstream: this.upstream,
      attempts: 0,
      code: message.code,
      grpcStatus: null,
      client: message.clientAddress,
      requestId: null,
      traceId: null,
      spanId: null,
      websocket: message.upgrade,
      headers: {},
    };
    if (settings.stream !== null) {
      const line = settings.format === 'json' ? JSON.stringify({ time: new Date().toISOString(), level: settings.level, msg: settings.message, ...fields }) : refusedCombinedLine(message);
      settings.stream.write(`${line}\n`);
    } else if (settings.format === 'json') this.logger[settings.level](fields, settings.message);
    else this.logger[settings.level]({}, refusedCombinedLine(message));
  }

  end(record: RequestRecord): void {
    const settings = this.settings;
    if (settings.stream !== null) {
      settings.stream.write(settings.format === 'json' ? this.jsonLine(record) : `${combinedLine(record, settings)}\n`);
    } else if (settings.format === 'json') {
      this.logger[settings.level](this.fields(record) as unknown as Record<string, unknown>, settings.message);
    } else {
      this.logger[settings.level]({}, combinedLine(record, settings));
    }
  }

  /**
   * The JSON line for a stream, written straight from the record: no fields object, no
   * `JSON.stringify` of one (about three times the cost), strings escaped only when they must be.
   */
  private jsonLine(record: RequestRecord): string {
    const request = record.request;
    const client = request.client;
    const id = requestIdOf(client);
    const traced = tracedRecord(record);
    return (
      `{"time":"${isoTime(record.startTime)}","level":"${this.settings.level}","msg":${this.message}` +
      `,"method":${this.method.of(request.method)},"path":${jsonStringOf(loggedPath(client.originalUrl, this.settings.query), client.originalUrl)}` +
      `,"status":${record.status},"bytesIn":${record.bytesIn},"bytesOut":${record.bytesOut}` +
      `,"duration":${millisecondsJson(record.duration)},"ttfb":${record.firstByte < 0 ? 'null' : millisecondsJson(record.firstByte)}` +
      `,"upstream":${this.upstreamOf(record) === this.upstream ? this.upstreamJson : jsonString(this.upstreamOf(record))},"attempts":${record.attempts},"code":${record.code === null ? 'null' : jsonString(record.code)}` +
      `,"grpcStatus":${record.grpcStatus}` +
      `,"client":${this.address.of(client.clientAddress)},"requestId":${id === undefined ? 'null' : jsonString(id)}` +
      // Trace and span ids are hex, checked when tracing noted them: nothing to escape.
      `,"traceId":${traced.traceId === null ? 'null' : `"${traced.traceId}"`},"spanId":${traced.spanId === null ? 'null' : `"${traced.spanId}"`}` +
      `,"websocket":${record.session},"headers":{${this.headersJson(clientHeaders(record))}}}\n`
    );
  }

  /** The origin of the last attempt: a balancer's choice, else the relay's target. */
  private upstreamOf(record: RequestRecord): string {
    return record.attemptTarget === null ? this.upstream : record.attemptTarget.origin;
  }

  /** The logged request headers as JSON members, secrets redacted, absent ones left out. */
  private headersJson(headers: LoggedHeaders): string {
    const settings = this.settings;
    const names = settings.headers;
    let text = '';
    for (let index = 0; index < names.length; index++) {
      const value = headerValue(headers, names[index]!, settings.secret, settings.query);
      if (value === undefined) continue;
      const key = this.headerKeys[index]!;
      text += `${text === '' ? key.first : key.next}${key.value.of(value)}`;
    }
    return text;
  }

  private fields(record: RequestRecord): AccessLogFields {
    const request = record.request;
    const client = request.client;
    const traced = tracedRecord(record);
    return {
      method: request.method,
      path: loggedPath(client.originalUrl, this.settings.query),
      status: record.status,
      bytesIn: record.bytesIn,
      bytesOut: record.bytesOut,
      duration: milliseconds(record.duration),
      ttfb: record.firstByte < 0 ? null : milliseconds(record.firstByte),
      upstream: this.upstreamOf(record),
      attempts: record.attempts,
      code: record.code,
      grpcStatus: record.grpcStatus,
      client: client.clientAddress,
      requestId: requestIdOf(client) ?? null,
      traceId: traced.traceId,
      spanId: traced.spanId,
      websocket: record.session,
      headers: pickHeaders(clientHeaders(record), this.settings.headers, this.settings.secret, this.settings.query),
    };
  }
}

function milliseconds(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/**
 * `milliseconds(value)` as JSON text with three decimals (`12.5` → `12.500`, the same number once
 * parsed), from whole microseconds: a double's shortest decimal form cost about 250 ns per
 * number here, two integers about 50.
 */
function millisecondsJson(value: number): string {
  const micros = Math.round(value * 1000);
  const whole = Math.floor(micros / 1000);
  const rest = micros - whole * 1000;
  return `${whole}.${rest < 10 ? '00' : rest < 100 ? '0' : ''}${rest}`;
}

/**
 * The bytes a Combined Log Format line escapes, as nginx's default escaping does: `"`, `\`, and
 * every byte below 32 or above 126. Node reads a header one character per byte (latin1), so a
 * UTF-8 `é` is two characters here, written `\xC3\xA9`: the client's bytes, in an ASCII line.
 */
const clfEscaped = /[\\"\x00-\x1f\x7f-\u{10ffff}]/gu;

/**
 * `\xHH`, upper-case hex as nginx writes it. Header and path text is one byte per character
 * (latin1); a character above 0xFF (the `…` of a cut path) is escaped as its UTF-8 bytes, so the
 * line stays ASCII.
 */
function hexEscape(char: string): string {
  const code = char.charCodeAt(0);
  if (code > 0xff) return [...Buffer.from(char, 'utf8')].map((byte) => `\\x${byte.toString(16).toUpperCase()}`).join('');
  return `\\x${code < 16 ? '0' : ''}${code.toString(16).toUpperCase()}`;
}

/** A quoted field of a Combined Log Format line: quotes, backslashes, controls and non-ASCII bytes escaped. */
function quoted(value: string | undefined): string {
  if (value === undefined || value === '') return '"-"';
  return `"${value.replace(clfEscaped, hexEscape)}"`;
}

/** The relay's short error body for a request it refused (none for HEAD). */
function refusedBodyBytes(message: RequestRefusedMessage): number {
  return message.method === 'HEAD' ? 0 : Buffer.byteLength(errorBody(new RelayError(message.code, message.code)));
}

/** A refused request in Combined Log Format: no stage saw its headers, so no referer or agent. */
function refusedCombinedLine(message: RequestRefusedMessage): string {
  return `${message.clientAddress || '-'} - - [${clfTime(Date.now())}] ${quoted(`${message.method} ${message.path} HTTP/${message.httpVersion}`)} ${message.status} ${refusedBodyBytes(message) || '-'} "-" "-"`;
}

/** `client - - [time] "METHOD path HTTP/x" status bytes "referer" "user-agent"`. */
function combinedLine(record: RequestRecord, settings: AccessLogSettings): string {
  const request = record.request;
  const client = request.client;
  const version = client.incoming?.httpVersion ?? '1.1';
  const requestLine = quoted(`${request.method} ${loggedPath(client.originalUrl, settings.query)} HTTP/${version}`);
  const headers = clientHeaders(record);
  const referer = headerValue(headers, 'referer', settings.secret, settings.query);
  const agent = headerValue(headers, 'user-agent', settings.secret, settings.query);
  return `${client.clientAddress || '-'} - - [${clfTime(record.startTime)}] ${requestLine} ${record.status} ${record.bytesOut || '-'} ${quoted(referer)} ${quoted(agent)}`;
}

/**
 * The request headers as the client sent them (node's parsed ones): the relay has rewritten
 * `Host` and dropped hop-by-hop headers by the time a stage sees the request. A request without
 * a node:http one (`relay.dispatch` of an in-memory request) has only the stage's record.
 */
function clientHeaders(record: RequestRecord): LoggedHeaders {
  return record.request.client.incoming?.headers ?? record.request.headers;
}

/**
 * One structured line per request, and one per WebSocket session when it closes: method, path
 * (query redacted), status, bytes in and out, duration, time to the upstream's first byte,
 * upstream, attempts, error code, client address, request id and chosen request headers
 * (secrets redacted). To the relay's logger, another pino-style logger, or a stream as JSON or
 * Combined Log Format. Returns the request and attempt stages: `[log.request, retry(), log.attempt]`.
 *
 * @example
 * const log = accessLog({ stream: process.stdout, format: 'combined' });
 * createRelay({ targetBaseUrl: 'http://api:8000', stages: [log.request, retry({ maxRetries: 2 }), log.attempt] });
 */
export function accessLog(options: AccessLogOptions = {}): Observation {
  return createObservation([accessLogFactory(accessLogSettings(options))], null);
}
