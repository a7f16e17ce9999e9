// docs/cookies.md: Set-Cookie rewriting with @relay/cookies. cookies.test.ts runs each recipe
// against a real upstream that sets two cookies for its own domain.
import { createRelay, type Relay, type Stage } from '@relay/core';
import { cookies } from '@relay/cookies';

export function dropDomain(authService = 'http://auth:8000'): Relay {
  const auth = createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',
    stages: [cookies({ rewriteDomain: () => '' })],
  });
  // upstream: Set-Cookie: session=…; Domain=auth.internal; Path=/; HttpOnly; Secure
  // client:   Set-Cookie: session=…; Path=/; HttpOnly; Secure
  return auth;
}

export function rewriteDomain(): Stage {
  return cookies({ rewriteDomain: () => 'example.com' });
  // client: Set-Cookie: session=…; Domain=example.com; Path=/; HttpOnly; Secure
}

export function domainMap(): Stage {
  return cookies({ rewriteDomain: { 'auth.internal': 'example.com', '*': '' } });
}

export function domainFunction(): Stage {
  return cookies({ rewriteDomain: (domain, name) => (name === 'tracking' ? null : domain === undefined ? undefined : '') });
}

export function preserveDomain(): Stage {
  return cookies(); // or no cookies() stage at all
}

export function pathsAndFlags(): Stage {
  return cookies({
    rewritePath: { '/api/v1': '/auth' },  // the upstream's prefix → the public mount path
    secure: true,                         // TLS ends at the load balancer: mark every cookie Secure
    sameSite: 'Lax',
  });
}
