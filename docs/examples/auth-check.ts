// docs/stages.md: a stage that answers 401 itself, before the upstream is contacted.
// stages.test.ts runs it in a relay in front of a real upstream, for HTTP and WebSocket.
import { Readable } from 'node:stream';
import type { ProxyResponse, Stage } from '@relay/core';

export interface AuthCheckOptions {
  /** Whether a bearer token is valid; may be async (an introspection call, a JWT check). */
  verify: (token: string) => boolean | Promise<boolean>;
  /** The realm named in `WWW-Authenticate`. Default `api`. */
  realm?: string;
}

/** Answers 401 to requests without a valid `Authorization: Bearer` token; the upstream never sees them. */
export function authCheck(options: AuthCheckOptions): Stage {
  if (typeof options?.verify !== 'function') throw new TypeError('authCheck: verify must be a function');
  const realm = options.realm ?? 'api';
  if (!/^[\w .-]+$/.test(realm)) throw new TypeError(`authCheck: realm must be plain text, got "${realm}"`);
  const body = Buffer.from('401 Unauthorized: a valid bearer token is required\n');
  const challenge = `Bearer realm="${realm}"`;

  function unauthorized(): ProxyResponse {
    return {
      status: 401,
      statusMessage: '',
      headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length), 'www-authenticate': challenge },
      body: Readable.from([body]),
    };
  }

  return {
    name: 'auth-check',
    wrap: (next) =>
      async function authCheckStage(request) {
        const header = request.headers.authorization;
        const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : '';
        if (token === '' || !(await options.verify(token))) return unauthorized();
        return next(request);
      },
  };
}
