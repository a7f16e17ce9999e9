import type { Handler, ProxyRequest, ProxyResponse } from '../types.js';

/** The methods the relay forwards, named in its own answers to a TRACE or OPTIONS it ends. */
const allow = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * `Max-Forwards` on a TRACE or OPTIONS (RFC 9110 §7.6.2), checked where the request would leave
 * for the upstream, after the stages (an auth stage refuses it, an access log sees it, as for any
 * request): a proxy MUST NOT forward one whose value is 0 but answer it as the final recipient, and
 * MUST forward the others one lower. The relay ends an OPTIONS with 200 and `Allow`, and a TRACE
 * with 405 (it never reflects a request: nginx answers every TRACE so). Any other method, or an
 * invalid value, is sent untouched.
 *
 * @example
 * const send = maxForwardsChecked(transport.handle);
 */
export function maxForwardsChecked(send: Handler): Handler {
  return function transport(request: ProxyRequest): Promise<ProxyResponse> {
    return request.method === 'OPTIONS' || request.method === 'TRACE' ? lastHop(send, request) : send(request);
  };
}

function lastHop(send: Handler, request: ProxyRequest): Promise<ProxyResponse> {
  const value = request.headers['max-forwards'];
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) return send(request);
  const hops = Number(value);
  // A new record per attempt: a retry resends the request the stages left, not one already lowered.
  if (hops > 0) return send({ ...request, headers: { ...request.headers, 'max-forwards': String(hops - 1) } });
  const status = request.method === 'TRACE' ? 405 : 200;
  return Promise.resolve({ status, statusMessage: '', headers: { allow, 'content-length': '0' }, body: null });
}
