import { WebSocket } from 'ws';
/**
 * Whether a close code may be sent in a close frame (RFC 6455 §7.4): 1000–1003, 1007–1014 and
 * the registered and private ranges 3000–4999. 1004 is reserved; 1005, 1006 and 1015 only
 * describe what an endpoint saw and never travel on the wire.
 */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/**
 * The code the relay sends one side when the other side's session ended with `code`.
 *
 * A code a peer may send passes unchanged. 1005 (a close frame without a code) becomes 1000:
 * the peer closed cleanly and said no more. A connection lost without a close frame (1006),
 * a failed TLS layer (1015) or anything else that cannot be sent becomes 1011 when the upstream
 * was lost (the server side failed) and 1001 when the client was lost (it went away, as a
 * browser leaving the page does).
 */
export function relayedCloseCode(code: number, fromUpstream: boolean): number {
  if (isSendableCloseCode(code)) return code;
  if (code === 1005) return 1000;
  return fromUpstream ? 1011 : 1001;
}

/**
 * The close code the relay sent a peer that broke the protocol, by `ws` error code: the same
 * code then tells the other side why the session ended. Anything else (a write failure, a
 * compression failure) is 1011.
 */
export function closeCodeOfError(error: Error): number {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return 1011;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') return 1009;
  // A compressed message that does not inflate (zlib's data errors, which `ws` closes with 1007 itself).
  if (code === 'WS_ERR_INVALID_UTF8' || code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') return 1007;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return 1008;
  if (code.startsWith('WS_ERR_')) return 1002;
  return 1011;
}

/** Short, address-free close reasons the relay itself sends. */
export const closeReasons = {
  upstreamLost: 'upstream connection lost',
  clientLost: 'client connection lost',
  idle: 'idle timeout',
  shutdown: 'relay shutting down',
  refused: 'session not accepted',
  expired: 'session expired',
  1002: 'protocol error',
  1007: 'invalid message data',
  1008: 'too many fragments',
  1009: 'message too big',
  1011: 'relay error',
} as const;

/** The reason sent with a close code the relay chose after an error. */
export function reasonOfErrorCode(code: number): string {
  return code === 1002 || code === 1007 || code === 1008 || code === 1009 ? closeReasons[code] : closeReasons[1011];
}

/**
 * Starts a closing handshake on an open WebSocket; one already closing or closed is left alone. A
 * reason longer than a close frame holds (123 bytes, RFC 6455 §5.5: a hook's `{ close }` may be)
 * is cut on a character boundary: `ws` would throw from inside a socket's data handler.
 */
export function closeOpen(ws: WebSocket, code: number, reason: string | Buffer): void {
  if (ws.readyState === WebSocket.OPEN) {
    // A paused side would never read the peer's answering close frame.
    ws.resume();
    ws.close(code, fitReason(reason));
  } else if (ws.readyState === WebSocket.CONNECTING) {
    ws.terminate();
  }
}

const maxReasonBytes = 123;

function fitReason(reason: string | Buffer): string | Buffer {
  if (Buffer.byteLength(reason) <= maxReasonBytes) return reason;
  const text = typeof reason === 'string' ? reason : reason.toString('utf8');
  let fitted = '';
  for (const character of text) {
    if (Buffer.byteLength(fitted + character) > maxReasonBytes) break;
    fitted += character;
  }
  return fitted;
}
