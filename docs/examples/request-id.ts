// docs/stages.md, "Writing a stage": a request id stage. stages.test.ts tests it alone (a fake
// `next`, no sockets) and in a relay in front of a real upstream.
import { randomUUID } from 'node:crypto';
import type { Stage } from '@relay/core';

export interface RequestIdOptions { header?: string }

/** Adds a request id header unless the client sent one. */
export function requestId(options: RequestIdOptions = {}): Stage {
  const header = (options.header ?? 'x-request-id').toLowerCase();
  if (!/^[a-z0-9-]+$/.test(header)) throw new TypeError(`header must be a header name, got "${header}"`);
  return {
    name: 'request-id',
    wrap: (next) =>
      function requestIdStage(request) {
        request.headers[header] ??= randomUUID();
        return next(request);
      },
  };
}
