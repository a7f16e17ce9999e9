// The example of packages/headers/README.md. package-readmes.test.ts runs it against a real upstream
// on 127.0.0.1, on port 0 instead of 8080.
import http from 'node:http';
import { createRelay } from '@relay/core';
import { headers, rewriteLocation } from '@relay/headers';

export async function headersExample(internalService = 'http://internal:9000', serviceToken = process.env.SERVICE_TOKEN!, port = 8080) {
  const internal = createRelay({
    targetBaseUrl: internalService,
    mountPath: '/internal',
    stages: [
      rewriteLocation(),                                   // 302 Location: http://internal:9000/x → http://gw/internal/x
      headers({
        dropRequest: ['authorization'],                    // the client's credentials stay here
        extraRequest: { 'X-Service-Auth': serviceToken },
        dropResponse: ['x-debug-info'],
      }),
    ],
  });
  await internal.startup();
  const server = http.createServer(internal.handle).listen(port);
  return { internal, server };
}
