import * as wsModule from 'ws';

/** `Sec-WebSocket-Extensions` parsed by `ws`: name → entries, each parameter → its values (`true` when bare). */
export type ParsedExtensions = Record<string, Array<Record<string, Array<string | true>>>>;

/** One permessage-deflate negotiation of `ws`: `accept` checks an offer (server) or an answer (client), throwing what is wrong. */
interface PerMessageDeflateNegotiation {
  accept(configurations: Array<Record<string, Array<string | true>>>): unknown;
}

/**
 * The parts of `ws` its server and client use to check extension headers. Both are named exports of
 * `ws`'s public entry (`index.js` and `wrapper.mjs`), though `@types/ws` does not declare them; `lib/*`
 * itself is closed by `ws`'s `exports` map. Using them keeps the relay's verdicts the ones `ws` reaches,
 * quoting and escapes included.
 */
interface WsExtensionParts {
  extension: { parse(header: string): ParsedExtensions };
  PerMessageDeflate: new (options: { clientMaxWindowBits?: boolean | number; isServer: boolean }) => PerMessageDeflateNegotiation;
}

const parts = wsModule as unknown as WsExtensionParts;
// Fail when the module loads, not at the first handshake, should a `ws` release stop exporting them.
if (typeof parts.extension?.parse !== 'function' || typeof parts.PerMessageDeflate !== 'function') {
  throw new Error('@relay/ws: the installed ws does not export extension and PerMessageDeflate');
}

/** `ws`'s `Sec-WebSocket-Extensions` parser. */
export const extension = parts.extension;
/** `ws`'s permessage-deflate negotiation (RFC 7692 §7.1). */
export const PerMessageDeflate = parts.PerMessageDeflate;

/** The extension name of RFC 7692. */
export const DEFLATE = 'permessage-deflate';
