import type { HeaderRecord, ProxyRequest, TransportConfig } from '../types.js';

/**
 * The request's trailer fields, read once its body has ended (`request.trailers`, which a stage
 * may have wrapped). A stage's function that throws is logged, and the body ends without them:
 * the request itself is whole.
 */
export function readRequestTrailers(config: Pick<TransportConfig, 'logger'>, request: ProxyRequest): HeaderRecord | null {
  try {
    return request.trailers!();
  } catch (error) {
    config.logger.warn({ method: request.method, error: (error as Error).message }, 'invalid request trailers dropped');
    return null;
  }
}
