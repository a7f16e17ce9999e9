import { assertKnownKeys, RelayError, type HeaderRecord, type HeaderValue, type ProxyRequest, type ProxyResponse, type Stage } from '@relay/core';
import { copyHeaders, isValidAuthority } from '@relay/core/transport';
import { appendListValue, forwardedElement, viaProtocol, type HopClient } from './forwarded.js';
import { describe, headerNameList, isHeaderName, isHeaderValue, unsettableHeaders } from './header-syntax.js';

/** What a header function returns: a value, several values, or `null`/`undefined` for "send none". */
export type HeaderFunctionResult = string | readonly string[] | null | undefined;

/** A request header computed per request (a per-request token); may be async. */
export type RequestHeaderFunction = (request: ProxyRequest) => HeaderFunctionResult | PromiseLike<HeaderFunctionResult>;

/** A response header computed per response; may be async. */
export type ResponseHeaderFunction = (
  request: ProxyRequest,
  response: ProxyResponse,
) => HeaderFunctionResult | PromiseLike<HeaderFunctionResult>;

/** Options of `headers()`. Header names are case-insensitive everywhere. */
export interface HeadersOptions {
  /**
   * Headers set on the upstream request, replacing any the client sent under the same name in any
   * case (a request trailer of that name is dropped). `host` must be one `host[:port]`.
   */
  extraRequest?: Readonly<Record<string, string | readonly string[] | RequestHeaderFunction>>;
  /** Request headers (and request trailer fields) removed before forwarding. */
  dropRequest?: readonly string[];
  /**
   * When given, only these request headers are forwarded (plus `alwaysAllowedRequestHeaders`, and
   * `forwarded`/`via` when this stage appends to them); only these request trailer fields.
   */
  allowRequest?: readonly string[];
  /** Headers set on the response to the client, replacing the upstream's under the same name (a response trailer of that name is dropped). */
  extraResponse?: Readonly<Record<string, string | readonly string[] | ResponseHeaderFunction>>;
  /** Response headers (and response trailer fields) removed before the client sees them. */
  dropResponse?: readonly string[];
  /**
   * When given, only these response headers reach the client (plus `alwaysAllowedResponseHeaders`,
   * and `via` when this stage appends to it); only these response trailer fields.
   */
  allowResponse?: readonly string[];
  /**
   * Add an RFC 7239 `Forwarded` element for this hop to the upstream request: `true` or
   * `'append'` appends to the client's, `'replace'` discards the client's. Default `false`.
   */
  forwarded?: boolean | 'append' | 'replace';
  /**
   * Add this relay to `Via` (RFC 9110 §7.6.3) on requests and responses, with the protocol each
   * was received with: `true` names it `relay`, a string gives the pseudonym. Default `false`.
   */
  via?: boolean | string;
}

/**
 * Request headers an `allowRequest` list always keeps: `Host` and the forwarding headers the
 * core sets (routing depends on them), and the headers that describe the body bytes.
 */
export const alwaysAllowedRequestHeaders: readonly string[] = Object.freeze([
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'content-length',
  'content-encoding',
]);

/** Response headers an `allowResponse` list always keeps: the ones that describe the body bytes. */
export const alwaysAllowedResponseHeaders: readonly string[] = Object.freeze(['content-length', 'content-encoding']);

const optionNames = ['extraRequest', 'dropRequest', 'allowRequest', 'extraResponse', 'dropResponse', 'allowResponse', 'forwarded', 'via'];

type HeaderFunction = (request: ProxyRequest, response: ProxyResponse) => HeaderFunctionResult | PromiseLike<HeaderFunctionResult>;

/** One extra header, checked once: a fixed value or a function. */
export interface ExtraHeader {
  readonly name: string;
  /** `extraRequest["x-token"]`, for error messages. */
  readonly option: string;
  readonly value: HeaderValue | null;
  readonly compute: HeaderFunction | null;
  /** The upstream request's `Host`: a function's value is checked as one authority per request. */
  readonly isHost: boolean;
}

/** The rules of one direction, compiled once when the stage is built. */
export interface DirectionRules {
  /** Work on a copy of the record: the stage's input is never changed, so functions see it whole and a retry can reuse it. */
  readonly copy: boolean;
  readonly allow: ReadonlySet<string> | null;
  readonly drop: readonly string[];
  readonly extras: readonly ExtraHeader[];
  readonly forwarded: 'append' | 'replace' | null;
  /** The `received-by` of this relay's `Via` entries, or `null`. */
  readonly via: string | null;
  /** The trailer fields kept: the names the user allowed (the head's additions are for the head), or `null`. */
  readonly trailerAllow: ReadonlySet<string> | null;
  /** The trailer fields removed: the drop list, and the extra headers' names (a trailer never stands in for one). */
  readonly trailerDrop: readonly string[];
  /** True when the trailers need wrapping: an allow list or a name to drop. */
  readonly filtersTrailers: boolean;
}

/**
 * Header rules for both directions: extra headers (fixed or per request), drop lists and
 * allow lists, and optionally `Forwarded` and `Via`. Everything is checked when the factory is
 * called; invalid names or values (CR, LF, control characters) throw a TypeError naming the
 * option. A function returning an invalid value fails that request with `ERR_INTERNAL` (500).
 *
 * Per request and direction the order is: allow list, drop list, `Forwarded`/`Via`, extra
 * headers, so extra headers survive both lists and a client can never pre-seed one. Both lists
 * apply to the trailer fields too.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://internal:9000',
 *   stages: [headers({
 *     dropRequest: ['authorization'],
 *     extraRequest: { 'x-service-auth': process.env.SERVICE_TOKEN! },
 *     dropResponse: ['x-debug-info'],
 *   })],
 * });
 */
export function headers(options: HeadersOptions = {}): Stage {
  const { request, response } = compileHeaderRules(options, 'headers');
  return {
    name: 'headers',
    wrap(next) {
      return async function headersStage(incoming: ProxyRequest): Promise<ProxyResponse> {
        let outgoing = incoming;
        if (request !== null) {
          const prepared = applyRequestRules(request, incoming);
          outgoing = isThenable(prepared) ? await prepared : prepared;
        }
        if (response === null) return next(outgoing);
        const upstream = await next(outgoing);
        try {
          const result = applyResponseRules(response, outgoing, upstream);
          return isThenable(result) ? await result : result;
        } catch (error) {
          // The client gets a 500 instead: release the upstream connection now.
          upstream.body?.destroy();
          throw error;
        }
      };
    },
  };
}

/** Both directions' rules, compiled once; `null` for a direction with nothing to do. */
export interface CompiledHeaderRules {
  readonly request: DirectionRules | null;
  readonly response: DirectionRules | null;
}

/**
 * Checks the options of `headers()` (and of `headerRules`) and compiles them. Throws a TypeError
 * or RangeError naming the option.
 *
 * @example
 * const { request, response } = compileHeaderRules({ dropRequest: ['cookie'] }, 'headers'); // response === null
 */
export function compileHeaderRules(options: HeadersOptions, factory: string): CompiledHeaderRules {
  if (options === null || typeof options !== 'object') throw new TypeError(`${factory}(options) needs an options object`);
  assertKnownKeys(options, optionNames, factory);
  const forwarded = readForwarded(options.forwarded);
  const via = readVia(options.via);
  return {
    request: compileRules(options.extraRequest, options.dropRequest, options.allowRequest, alwaysAllowedRequestHeaders, forwarded, via, 'Request'),
    response: compileRules(options.extraResponse, options.dropResponse, options.allowResponse, alwaysAllowedResponseHeaders, null, via, 'Response'),
  };
}

function readForwarded(value: unknown): 'append' | 'replace' | null {
  if (value === undefined || value === false) return null;
  if (value === true || value === 'append') return 'append';
  if (value === 'replace') return 'replace';
  if (typeof value === 'string') throw new RangeError(`headers: forwarded must be true, false, "append" or "replace", got ${describe(value)}`);
  throw new TypeError(`headers: forwarded must be a boolean, "append" or "replace", got ${describe(value)}`);
}

function readVia(value: unknown): string | null {
  if (value === undefined || value === false) return null;
  if (value === true) return 'relay';
  if (typeof value !== 'string') throw new TypeError(`headers: via must be a boolean or a pseudonym string, got ${describe(value)}`);
  // received-by = pseudonym [ ":" port ]; a token keeps internal host names out of it.
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(:\d{1,5})?$/.test(value)) {
    throw new TypeError(`headers: via must be a pseudonym such as "relay" or "edge-1" (a token, optionally ":port"), got ${describe(value)}`);
  }
  return value;
}

function compileRules(
  extraOption: unknown,
  dropOption: unknown,
  allowOption: unknown,
  alwaysAllowed: readonly string[],
  forwarded: 'append' | 'replace' | null,
  via: string | null,
  direction: 'Request' | 'Response',
): DirectionRules | null {
  const extras = compileExtras(extraOption, `extra${direction}`);
  const drop = dropOption === undefined ? [] : headerNameList(dropOption, `headers: drop${direction}`);
  const allowed = allowOption === undefined ? null : headerNameList(allowOption, `headers: allow${direction}`);
  const allow = allowed === null ? null : new Set([...allowed, ...alwaysAllowed, ...chainNames(forwarded, via)]);
  // A trailer field never stands in for a header this stage sets: not a client's upstream, nor an upstream's to the client.
  const trailerDrop = [...new Set([...drop, ...extras.map((extra) => extra.name)])];
  for (const extra of extras) {
    if ((extra.name === 'forwarded' && forwarded !== null) || (extra.name === 'via' && via !== null)) {
      throw new TypeError(`headers: ${extra.option} conflicts with the ${extra.name} option: use one or the other`);
    }
  }
  if (extras.length === 0 && drop.length === 0 && allow === null && forwarded === null && via === null) return null;
  const computed = extras.some((extra) => extra.compute !== null);
  return {
    copy: allow !== null || forwarded !== null || via !== null || computed,
    allow,
    drop,
    extras,
    forwarded,
    via,
    trailerAllow: allowed === null ? null : new Set(allowed),
    trailerDrop,
    filtersTrailers: allowed !== null || trailerDrop.length > 0,
  };
}

/**
 * The list headers this stage appends to: an allow list keeps them, so the hops before this one
 * (a trusted proxy's `Forwarded` element, its `Via` entry) are not cut before this hop's is added.
 */
function chainNames(forwarded: 'append' | 'replace' | null, via: string | null): string[] {
  const names: string[] = [];
  if (forwarded === 'append') names.push('forwarded');
  if (via !== null) names.push('via');
  return names;
}

function compileExtras(value: unknown, option: string): ExtraHeader[] {
  if (value === undefined) return [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`headers: ${option} must be an object of header name → value or function`);
  }
  const extras = new Map<string, ExtraHeader>();
  for (const [rawName, source] of Object.entries(value)) {
    const label = `${option}[${JSON.stringify(rawName)}]`;
    if (!isHeaderName(rawName)) throw new TypeError(`headers: ${label} is not a valid header name`);
    const name = rawName.toLowerCase();
    if (extras.has(name)) throw new TypeError(`headers: ${label} is given twice in different cases`);
    if (unsettableHeaders.has(name)) {
      throw new TypeError(`headers: ${label} cannot be set by a stage: it frames the message or describes one connection`);
    }
    const entryLabel = `${option}["${name}"]`;
    const isHost = name === 'host' && option === 'extraRequest';
    if (typeof source === 'function') {
      extras.set(name, { name, option: entryLabel, value: null, compute: source as HeaderFunction, isHost });
      continue;
    }
    const checked = checkValue(source, name, isHost);
    if (checked === null && isHost) {
      throw new TypeError(`headers: ${label} must be one host[:port] (no userinfo, path, spaces or second value), or a function`);
    }
    if (checked === null) {
      throw new TypeError(
        `headers: ${label} must be a string, an array of strings or a function, with no CR, LF or other control character`,
      );
    }
    extras.set(name, { name, option: entryLabel, value: checked, compute: null, isHost });
  }
  return [...extras.values()];
}

/**
 * A header value ready for the record, or `null` when it is not a valid one. A `Host` is one
 * non-empty authority: the upstream's URI always has one (RFC 9112 §3.2).
 */
function checkValue(value: unknown, name: string, isHost: boolean): HeaderValue | null {
  if (isHost) return typeof value === 'string' && value !== '' && isValidAuthority(value) ? value : null;
  if (typeof value === 'string') {
    if (!isHeaderValue(value)) return null;
    return name === 'set-cookie' ? [value] : value;
  }
  if (!Array.isArray(value) || value.length === 0) return null;
  for (const item of value) {
    if (typeof item !== 'string' || !isHeaderValue(item)) return null;
  }
  return value.slice() as string[];
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Keeps only the allowed names of a record, in a new record. */
function pick(headers: HeaderRecord, allow: ReadonlySet<string>): HeaderRecord {
  const kept: HeaderRecord = {};
  for (const name in headers) {
    if (allow.has(name)) kept[name] = headers[name];
  }
  return kept;
}

function applyRequestRules(rules: DirectionRules, request: ProxyRequest): ProxyRequest | Promise<ProxyRequest> {
  const headers = rules.copy ? ownCopy(rules, request.headers) : request.headers;
  const trailers = rules.filtersTrailers ? request.trailers : undefined;
  // A new request whenever something changes: the one received stays whole, for a retry.
  const outgoing = headers === request.headers && trailers === undefined ? request : { ...request, headers };
  if (trailers !== undefined) outgoing.trailers = filterTrailers.bind(null, rules, trailers);
  editHeaders(rules, headers, request.client, request.client.incoming?.httpVersion);
  const pending = setExtras(rules.extras, 0, headers, request, null);
  return pending === null ? outgoing : pending.then(() => outgoing);
}

function applyResponseRules(rules: DirectionRules, request: ProxyRequest, response: ProxyResponse): ProxyResponse | Promise<ProxyResponse> {
  const headers = rules.copy ? ownCopy(rules, response.headers) : response.headers;
  const trailers = rules.filtersTrailers ? response.trailers : undefined;
  const outgoing = headers === response.headers && trailers === undefined ? response : { ...response, headers };
  if (trailers !== undefined) outgoing.trailers = filterTrailers.bind(null, rules, trailers);
  // The version the transport received the answer in; one a stage made itself counts as HTTP/1.1.
  editHeaders(rules, headers, null, response.httpVersion);
  const pending = setExtras(rules.extras, 0, headers, request, response);
  return pending === null ? outgoing : pending.then(() => outgoing);
}

/**
 * A copy of `headers` this call owns: only the allowed names when there is an allow list.
 *
 * @example
 * const owned = ownCopy(rules, request.headers);
 */
export function ownCopy(rules: DirectionRules, headers: HeaderRecord): HeaderRecord {
  return rules.allow === null ? copyHeaders(headers) : pick(headers, rules.allow);
}

/**
 * The rules every caller applies alike, on a record it may change (the allow list was applied
 * by `ownCopy`): the drop list, then `Forwarded` and `Via` for this hop. `client` is needed only
 * when `rules.forwarded` is set.
 *
 * @example
 * editHeaders(rules, owned, request.client, request.client.incoming?.httpVersion);
 */
export function editHeaders(rules: DirectionRules, headers: HeaderRecord, client: HopClient | null, httpVersion: string | undefined): void {
  removeNames(headers, rules.drop);
  if (rules.forwarded !== null) {
    const element = forwardedElement(client!);
    headers.forwarded = rules.forwarded === 'append' ? appendListValue(headers.forwarded, element) : element;
  }
  if (rules.via !== null) headers.via = appendListValue(headers.via, `${viaProtocol(httpVersion)} ${rules.via}`);
}

/** The trailer fields that pass this direction's lists, in a new record; `null` when none is left. */
function filterTrailers(rules: DirectionRules, read: () => HeaderRecord | null): HeaderRecord | null {
  const fields = read();
  if (fields === null) return null;
  const kept = rules.trailerAllow === null ? copyHeaders(fields) : pick(fields, rules.trailerAllow);
  removeNames(kept, rules.trailerDrop);
  for (const _name in kept) return kept;
  return null;
}

function removeNames(headers: HeaderRecord, names: readonly string[]): void {
  for (let index = 0; index < names.length; index++) {
    const name = names[index]!;
    if (headers[name] !== undefined) delete headers[name];
  }
}

/**
 * Sets the extra headers from `start` on. Fixed values are set at once; a function is called
 * with the request (and response) as this stage received them. Returns `null` when all were
 * set synchronously, or a promise when a function answered with one. `request` is `null` only
 * for rules without function values (`headerRules`).
 *
 * @example
 * const pending = setExtras(rules.extras, 0, headers, request, null);
 */
export function setExtras(
  extras: readonly ExtraHeader[],
  start: number,
  headers: HeaderRecord,
  request: ProxyRequest | null,
  response: ProxyResponse | null,
): Promise<void> | null {
  for (let index = start; index < extras.length; index++) {
    const extra = extras[index]!;
    if (extra.compute === null) {
      const value = extra.value!;
      headers[extra.name] = typeof value === 'string' ? value : value.slice();
      continue;
    }
    let result: HeaderFunctionResult | PromiseLike<HeaderFunctionResult>;
    try {
      result = extra.compute(request!, response!);
    } catch (error) {
      throw functionFailed(extra, error);
    }
    if (isThenable(result)) {
      // A client-sent value must not survive while the function is pending.
      delete headers[extra.name];
      return finishExtras(extras, index, result, headers, request, response);
    }
    setComputed(headers, extra, result);
  }
  return null;
}

async function finishExtras(
  extras: readonly ExtraHeader[],
  index: number,
  pending: PromiseLike<HeaderFunctionResult>,
  headers: HeaderRecord,
  request: ProxyRequest | null,
  response: ProxyResponse | null,
): Promise<void> {
  let result: HeaderFunctionResult;
  try {
    result = await pending;
  } catch (error) {
    throw functionFailed(extras[index]!, error);
  }
  setComputed(headers, extras[index]!, result);
  const rest = setExtras(extras, index + 1, headers, request, response);
  if (rest !== null) await rest;
}

function setComputed(headers: HeaderRecord, extra: ExtraHeader, result: HeaderFunctionResult): void {
  if (result === null || result === undefined || (Array.isArray(result) && result.length === 0)) {
    delete headers[extra.name];
    return;
  }
  const value = checkValue(result, extra.name, extra.isHost);
  if (value === null) {
    // The value is not logged: it may be a credential.
    const expected = extra.isHost
      ? 'not one host[:port]'
      : 'not a string or string array, or it has CR, LF or another control character';
    throw new RelayError('ERR_INTERNAL', `headers: the ${extra.option} function returned an invalid header value (${expected})`);
  }
  headers[extra.name] = value;
}

function functionFailed(extra: ExtraHeader, error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RelayError('ERR_INTERNAL', `headers: the ${extra.option} function failed: ${message}`, { cause: error });
}
