// The @relay/body section of docs/configuration.md: every option spelled out with its default.
// bodies.test.ts builds each one and sends a request through them.
import type { Stage } from '@relay/core';
import { bodyLimit, compress, transformRequest, transformRequestStream, transformResponse, transformResponseStream } from '@relay/body';
import { PassThrough } from 'node:stream';

export function bodyDefaults(): Stage[] {
  return [
    compress({
      encodings: ['br', 'gzip'],
      threshold: 1024,
      types: ['text/*', 'application/json', 'application/*+json', 'application/x-ndjson', 'application/javascript',
        'application/xml', 'application/*+xml', 'application/wasm', 'image/svg+xml'],
      flushTypes: ['text/event-stream'],
      gzipLevel: 6,
      brotliQuality: 4,
    }),
    transformResponse((text) => text, {
      as: 'text',
      types: ['text/*', 'application/json', 'application/*+json', 'application/javascript', 'application/xml',
        'application/*+xml', 'image/svg+xml'],
      maxBytes: 1_048_576,
    }),
    transformResponseStream(() => new PassThrough(), { types: ['text/html'] }),
    bodyLimit({ maxBytes: 1_048_576, types: {} }),
    transformRequest((body) => body, { as: 'json', types: ['application/json', 'application/*+json'], maxBytes: 1_048_576 }),
    transformRequestStream(() => new PassThrough(), { types: ['text/html'] }),
  ];
}
