import { DEFLATE, extension, PerMessageDeflate, type ParsedExtensions } from './ws-extensions.js';

/**
 * What makes the upstream's `Sec-WebSocket-Extensions` answer one the client must fail, or `null`:
 * a header that does not parse, an extension the client did not offer, or a permessage-deflate answer
 * RFC 7692 §7.1 makes a client fail (more than one entry, an unknown or repeated parameter, window bits
 * outside 8..15, a value on `*_no_context_takeover`, `client_max_window_bits` the offer did not have
 * or larger than offered). Checked as `ws`'s client checks it, so a transparent relay answers 502
 * rather than a `101` the client then fails. Runs once per handshake, only when the upstream answered
 * with extensions.
 */
export function extensionAnswerProblem(answer: string, offer: string): string | null {
  let answered: ParsedExtensions;
  try {
    answered = extension.parse(answer);
  } catch (error) {
    return `Invalid Sec-WebSocket-Extensions header: ${(error as Error).message}`;
  }
  const offered = parseOffer(offer);
  let deflate: ParsedExtensions[string] = [];
  for (const [name, entries] of Object.entries(answered)) {
    // Names compare without case, as the relay always has; `ws` itself would want them lowercase.
    const lowercase = name.toLowerCase();
    if (!offered.names.includes(lowercase)) return `Server indicated an extension that was not requested: ${name.slice(0, 64)}`;
    if (lowercase === DEFLATE) deflate = deflate.concat(entries);
  }
  if (deflate.length === 0) return null;
  if (deflate.length > 1) return `Invalid Sec-WebSocket-Extensions header: ${DEFLATE} accepted more than once`;
  try {
    new PerMessageDeflate({ clientMaxWindowBits: offered.clientMaxWindowBits, isServer: false }).accept(deflate);
  } catch (error) {
    return `Invalid Sec-WebSocket-Extensions header: ${(error as Error).message}`;
  }
  return null;
}

interface Offer {
  /** Extension names offered, lowercased. */
  names: string[];
  /**
   * The largest `client_max_window_bits` any permessage-deflate offer allows in the answer: `true` for
   * one offered without a value (any 8..15), `false` when no offer has it (the answer must not either).
   */
  clientMaxWindowBits: boolean | number;
}

/** What the offer that went upstream allows. The answer may accept any of several permessage-deflate offers. */
function parseOffer(offer: string): Offer {
  let parsed: ParsedExtensions;
  try {
    parsed = extension.parse(offer);
  } catch {
    // An offer `ws` cannot parse (the client's or a stage's) still went upstream: judge the answer by
    // names alone, as before, and let any client_max_window_bits through rather than refuse a guess.
    return { names: lenientNames(offer), clientMaxWindowBits: true };
  }
  let clientMaxWindowBits: boolean | number = false;
  const deflate = Object.entries(parsed).flatMap(([name, entries]) => (name.toLowerCase() === DEFLATE ? entries : []));
  for (const params of deflate) {
    const value = params.client_max_window_bits?.[0];
    if (value === undefined || clientMaxWindowBits === true) continue;
    if (value === true) clientMaxWindowBits = true;
    else clientMaxWindowBits = Math.max(Number(value) || 15, clientMaxWindowBits === false ? 0 : clientMaxWindowBits);
  }
  return { names: Object.keys(parsed).map((name) => name.toLowerCase()), clientMaxWindowBits };
}

/** Extension names of a `Sec-WebSocket-Extensions` value that does not parse, lowercased. */
function lenientNames(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.split(';')[0]!.trim().toLowerCase())
    .filter((name) => name !== '');
}
