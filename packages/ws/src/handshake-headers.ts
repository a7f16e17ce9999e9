import type { IncomingMessage } from 'node:http';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { RelayError, type HeaderRecord, type HeaderValue, type Target } from '@relay/core';
import { extensionOfferProblem } from './extension-offer.js';

const keyPattern = /^[+/0-9A-Za-z]{22}==$/;
const tokenPattern = /^[!#$%&'*+\-.0-9A-Z^_`|a-z~]+$/;
/** Characters node:http refuses in a request target; the relay sets the upstream path itself. */
const invalidPathCharacter = /[^\u0021-\u00ff]/;

/**
 * Parses a `Sec-WebSocket-Protocol` value into its subprotocol names, in order: a comma-separated
 * list of tokens without duplicates (RFC 6455 §4.1). Returns `[]` when the header is absent.
 * Throws a `SyntaxError` for anything else, as `ws` would refuse it.
 */
export function parseSubprotocols(value: HeaderValue | undefined): string[] {
  if (value === undefined) return [];
  const names: string[] = [];
  for (const item of (typeof value === 'string' ? value : value.join(',')).split(',')) {
    const name = item.trim();
    if (!tokenPattern.test(name)) throw new SyntaxError(`invalid subprotocol name "${name.slice(0, 64)}"`);
    if (names.includes(name)) throw new SyntaxError(`subprotocol "${name}" is offered twice`);
    names.push(name);
  }
  return names;
}

/** What the relay's own `ws` server will check of a client's handshake besides the basics. */
export interface ClientHandshakeChecks {
  /** The server negotiates permessage-deflate (terminating sessions with `perMessageDeflate`): the offer must be one it accepts. */
  deflateOffer: boolean;
}

/**
 * Checks the client's WebSocket handshake as `ws` will when the client is accepted (method,
 * `Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version`, `Sec-WebSocket-Protocol`, and with
 * `deflateOffer` the `Sec-WebSocket-Extensions` offer), before any upstream connection is opened for
 * it. Returns the subprotocols the client offers; throws a `RelayError` `ERR_BAD_HANDSHAKE` (400)
 * naming what is wrong.
 */
export function checkClientHandshake(incoming: IncomingMessage, checks: ClientHandshakeChecks = { deflateOffer: false }): string[] {
  const headers = incoming.headers;
  let problem: string | null = null;
  if (incoming.method !== 'GET') problem = `method ${String(incoming.method).slice(0, 16)} is not GET`;
  else if (headers.upgrade?.toLowerCase() !== 'websocket') problem = 'the Upgrade header is not "websocket"';
  else if (headers['sec-websocket-key'] === undefined || !keyPattern.test(headers['sec-websocket-key'])) {
    problem = 'missing or invalid Sec-WebSocket-Key';
  } else if (headers['sec-websocket-version'] !== '13' && headers['sec-websocket-version'] !== '8') {
    // RFC 6455 §4.4: the refusal names the versions understood, so the client can retry with one (as ws does).
    const message = 'invalid WebSocket handshake: missing or unsupported Sec-WebSocket-Version (13 and 8 are supported)';
    throw new RelayError('ERR_BAD_HANDSHAKE', message, { headers: { 'sec-websocket-version': '13, 8' } });
  }
  const offer = headers['sec-websocket-extensions'];
  if (problem === null && checks.deflateOffer && offer !== undefined) problem = extensionOfferProblem(offer);
  if (problem !== null) throw new RelayError('ERR_BAD_HANDSHAKE', `invalid WebSocket handshake: ${problem}`);
  try {
    return parseSubprotocols(headers['sec-websocket-protocol']);
  } catch (error) {
    throw new RelayError('ERR_BAD_HANDSHAKE', `invalid WebSocket handshake: Sec-WebSocket-Protocol: ${(error as Error).message}`);
  }
}

/** A header's value as one string (repeated values joined with `, `), `''` when absent. */
export function headerText(value: HeaderValue | undefined): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? value : value.join(', ');
}

/** Whether a request target can be written on the upstream request line as it is. */
export function isWritablePath(path: string): boolean {
  return path.charCodeAt(0) === 47 /* / */ && !invalidPathCharacter.test(path);
}

/**
 * Headers the relay never copies between a handshake and its counterpart: `ws` writes its own
 * `Connection`, `Upgrade` and `Sec-WebSocket-*` on each side (a copied `Sec-WebSocket-Key`
 * would be sent twice, and an upstream's `Sec-WebSocket-Accept` is wrong for the client's key),
 * and a handshake has no body.
 */
function isHandshakeOwned(name: string): boolean {
  return (
    name.startsWith('sec-websocket-') ||
    name === 'connection' ||
    name === 'upgrade' ||
    name === 'content-length' ||
    name === 'transfer-encoding'
  );
}

/**
 * The headers of the upstream handshake request: the request's record as the stages left it
 * (cookies, authorization, origin, user-agent, forwarding headers, host) without the ones `ws`
 * sets itself. Subprotocols go to `ws` separately, so the header is never duplicated.
 */
export function upstreamRequestHeaders(headers: HeaderRecord, hosts?: { relay: Target; chosen: Target }): Record<string, string | string[]> {
  const copy: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !isHandshakeOwned(name)) copy[name] = value;
  }
  // A stage chose another target: the relay target's Host becomes the chosen one's (core does the same for HTTP).
  if (hosts !== undefined && hosts.chosen !== hosts.relay && copy.host === hosts.relay.host) copy.host = hosts.chosen.host;
  return copy;
}

/**
 * The upstream's `101` headers as stages see them: end-to-end headers (`set-cookie` and the
 * others) plus the negotiated `sec-websocket-protocol`; `Sec-WebSocket-Accept` and
 * `Sec-WebSocket-Extensions` belong to the upstream connection and are left out.
 */
export function stripUpstreamHandshakeHeaders(headers: HeaderRecord): HeaderRecord {
  delete headers['sec-websocket-accept'];
  delete headers['sec-websocket-extensions'];
  delete headers['content-length'];
  return headers;
}

/**
 * The extra header lines of the client's `101`, from the headers the stages left: every header
 * but those `ws` writes itself, each value on its own line. Throws a `TypeError` for a name or
 * value that cannot be written (a stage that put a line break in a value).
 */
export function clientHandshakeLines(headers: HeaderRecord): string[] {
  const lines: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHandshakeOwned(name)) continue;
    validateHeaderName(name);
    for (const one of typeof value === 'string' ? [value] : value) {
      validateHeaderValue(name, one);
      lines.push(`${name}: ${one}`);
    }
  }
  return lines;
}
