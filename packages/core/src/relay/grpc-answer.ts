import type { ServerResponse } from 'node:http';
import type { ProxyResponse } from '../types.js';

/**
 * The gRPC status for the HTTP status of an answer the relay makes itself, as gRPC's "HTTP to gRPC
 * status code mapping" and Envoy's local replies give it: 400 INTERNAL, 401 UNAUTHENTICATED, 403
 * PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, anything else UNKNOWN.
 */
const grpcStatusOf: Record<number, number> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };

/**
 * The 504s that come after the call reached the service (or may have): the relay's read or write
 * timeout, or the request's overall deadline (`retry({ deadline })`). UNAVAILABLE would tell the
 * client that sending the call again is safe; DEADLINE_EXCEEDED (4) does not, as Envoy answers
 * since its PR #44479. A connect or pool timeout (nothing sent) stays UNAVAILABLE.
 */
const deadlineCodes: ReadonlySet<string> = new Set(['ERR_READ_TIMEOUT', 'ERR_WRITE_TIMEOUT', 'ERR_DEADLINE']);

/**
 * Whether `res` answers a gRPC call (`application/grpc`, `application/grpc+proto` …, not gRPC-Web)
 * over HTTP/2: such a client reads the outcome from `grpc-status`, not from the HTTP status.
 */
export function answersGrpc(res: ServerResponse): boolean {
  return isGrpcContentType((res as { req?: { headers?: Record<string, string | string[] | undefined> } }).req?.headers?.['content-type']);
}

/**
 * Whether a request's `content-type` is gRPC's (`application/grpc`, `application/grpc+proto` …),
 * not gRPC-Web's, which reads HTTP statuses.
 *
 * @example
 * isGrpcContentType('application/grpc+proto'); // true
 */
export function isGrpcContentType(type: string | string[] | undefined): boolean {
  return typeof type === 'string' && /^application\/grpc(?![-\w])/i.test(type);
}

/**
 * Whether `response` is a stage's own error answer (it carries `errorCode`: `rateLimit()`'s 429,
 * `bodyLimit()`'s 413) and not a gRPC answer already: to a gRPC call over HTTP/2 the relay sends it
 * trailers-only, as it sends its own errors. An upstream's answer (no `errorCode`) never is one.
 *
 * @example
 * isLocalErrorAnswer({ ...textResponse(429, body), errorCode: 'ERR_RATE_LIMITED' }); // true
 */
export function isLocalErrorAnswer(response: ProxyResponse): boolean {
  if (response.errorCode === undefined) return false;
  return !isGrpcContentType(response.headers['content-type']);
}

/** An error answer the relay gives: its HTTP status, and its `RelayError` code when it has one. */
export interface ErrorAnswer {
  readonly status: number;
  readonly code?: string | undefined;
}

/**
 * The `grpc-status` the relay sends a gRPC call for an error it would answer with `answer.status`:
 * a read or write timeout or a deadline (`answer.code`) is DEADLINE_EXCEEDED (4), every other 504
 * UNAVAILABLE (14).
 *
 * @example
 * grpcStatusForHttp({ status: 502 }); // 14 (UNAVAILABLE)
 * grpcStatusForHttp({ status: 504, code: 'ERR_READ_TIMEOUT' }); // 4 (DEADLINE_EXCEEDED)
 */
export function grpcStatusForHttp(answer: ErrorAnswer): number {
  if (answer.code !== undefined && deadlineCodes.has(answer.code)) return 4;
  return grpcStatusOf[answer.status] ?? 2;
}

/**
 * The head of a trailers-only gRPC answer (HTTP 200, no body, END_STREAM with the HEADERS) for an
 * error the relay answers (`grpcStatusForHttp`) with `text`, as Envoy answers
 * a gRPC call locally: any gRPC client then gets the status and the relay's message, not an HTTP
 * status it must guess from.
 */
export function grpcErrorHead(answer: ErrorAnswer, text: string): Record<string, string> {
  return { 'content-type': 'application/grpc', 'grpc-status': String(grpcStatusForHttp(answer)), 'grpc-message': percentEncoded(text.trim()) };
}

/** `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%` itself. */
function percentEncoded(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/gu, (char) => [...Buffer.from(char, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}
