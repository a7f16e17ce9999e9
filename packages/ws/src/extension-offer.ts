import { DEFLATE, extension, PerMessageDeflate, type ParsedExtensions } from './ws-extensions.js';

/**
 * What makes a client's `Sec-WebSocket-Extensions` offer one the relay's own `ws` server (terminating
 * sessions with `perMessageDeflate`) answers with 400, or `null`: a header that does not parse, or a
 * permessage-deflate offer RFC 7692 §7 does not allow (an unknown or repeated parameter, window bits
 * outside 8..15, a value on `*_no_context_takeover`). Checked as `ws`'s server checks it, with its own
 * parser and negotiation, so the client is refused before the upstream is contacted rather than after.
 */
export function extensionOfferProblem(offer: string): string | null {
  let offers: ParsedExtensions;
  try {
    offers = extension.parse(offer);
    // `ws`'s server looks the extension up by its lowercase name only, and so does this.
    const deflate = offers[DEFLATE];
    if (deflate !== undefined) new PerMessageDeflate({ isServer: true }).accept(deflate);
  } catch (error) {
    return `invalid or unacceptable Sec-WebSocket-Extensions header: ${(error as Error).message}`;
  }
  return null;
}
