import type { Handler, ProxyRequest, ProxyResponse } from '../types.js';

/** The methods the relay forwards, named in its own answers to a TRACE or OPTIONS it ends. */
const allow = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * `Max-Forwards` on a TRACE or OPTIONS (RFC 9110 §7.6.2): a proxy MUST NOT forward one whose value
 * is 0 but answer it as the final recipient, and MUST forward the others one lower. The relay ends
 * an OPTIONS with 200 and `Allow`, and a TRACE with 405 (it never reflects a request: nginx answers
 * every TRACE so). Any other method, or an invalid value, goes to the pipeline untouched.
 *
 * @example
 * response = await (isLastHopMethod(request.method) ? lastHop(pipeline, request) : pipeline(request));
 */
export function lastHop(pipeline: Handler, request: ProxyRequest): Promise<ProxyResponse> | ProxyResponse {
  const value = request.headers['max-forwards'];
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) return pipeline(request);
  const hops = Number(value);
  if (hops > 0) {
    request.headers['max-forwards'] = String(hops - 1);
    return pipeline(request);
  }
  const status = request.method === 'TRACE' ? 405 : 200;
  return { status, statusMessage: '', headers: { allow, 'content-length': '0' }, body: null };
}

/** Whether `Max-Forwards` applies to `method` (TRACE and OPTIONS only). */
export function isLastHopMethod(method: string): boolean {
  return method === 'OPTIONS' || method === 'TRACE';
}
