// The example of packages/cookies/README.md. package-readmes.test.ts runs it against a real upstream
// on 127.0.0.1, on port 0 instead of 8080.
import http from 'node:http';
import { createRelay } from '@relay/core';
import { cookies } from '@relay/cookies';

export async function cookiesExample(authService = 'http://auth:8000', port = 8080) {
  // The auth service sets Domain=auth.internal; the app is served at https://app.example.com/auth.
  const auth = createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',
    stages: [cookies({ rewriteDomain: () => '' })], // bind cookies to the host the browser used
  });
  await auth.startup();
  const server = http.createServer(auth.handle).listen(port);
  // upstream: Set-Cookie: sid=abc; Domain=auth.internal; Path=/; HttpOnly
  // client:   Set-Cookie: sid=abc; Path=/; HttpOnly
  return { auth, server };
}
