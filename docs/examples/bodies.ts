// The relays of docs/bodies.md, run by bodies.test.ts against real upstreams on 127.0.0.1.
import { createRelay, type Relay } from '@relay/core';
import { bodyLimit, compress, transformRequest, transformResponse } from '@relay/body';
import { retry } from '@relay/retry';

export function apiGateway(apiService = 'http://api:8000'): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    stages: [
      compress(),                                      // outermost: compresses the final response
      transformResponse(                               // once, on the response retry settled on
        (user: any) => ({ ...user, passwordHash: undefined }),
        { as: 'json' },
      ),
      bodyLimit({ maxBytes: 64 * 1024 }),              // before anything reads the request body
      transformRequest(                                // once; every attempt replays its result
        (order: any) => ({ ...order, channel: 'web' }),
        { as: 'json' },
      ),
      retry({ maxRetries: 2, methods: ['GET', 'POST'] }),
    ],
  });
}

export function uploadLimits(uploadService = 'http://uploads:8000'): Relay {
  return createRelay({
    targetBaseUrl: uploadService,
    stages: [
      bodyLimit({
        maxBytes: (request) => (request.path.startsWith('/admin/') ? 10 * 2 ** 20 : 1024 * 1024),
        types: { 'multipart/form-data': 50 * 2 ** 20, 'application/json': 256 * 1024 },
      }),
    ],
  });
}

// Streaming: a find-and-replace over HTML of any size, with flat memory.
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { transformResponseStream } from '@relay/body';

/** Replaces `from` with `to` in a UTF-8 stream; a match split across two chunks is still found. */
export class ReplaceStream extends Transform {
  private tail = '';
  private readonly decoder = new StringDecoder('utf8'); // a character split across chunks stays whole

  constructor(
    private readonly from: string,
    private readonly to: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const parts = (this.tail + this.decoder.write(chunk)).split(this.from);
    // After the last match, hold back (unreplaced) what could start a match the next chunk completes:
    // text already replaced is never scanned again, as with one replaceAll over the whole body.
    const rest = parts.pop()!;
    const cut = Math.max(0, rest.length - this.from.length + 1);
    this.tail = rest.slice(cut);
    parts.push(rest.slice(0, cut));
    callback(null, parts.join(this.to));
  }

  override _flush(callback: TransformCallback): void {
    callback(null, (this.tail + this.decoder.end()).replaceAll(this.from, this.to));
  }
}

export function siteGateway(site = 'http://site:8000'): Relay {
  return createRelay({
    targetBaseUrl: site,
    stages: [
      compress(),
      transformResponseStream(() => new ReplaceStream('http://site.internal', 'https://www.example.com'), {
        types: ['text/html'],
      }),
    ],
  });
}

// The decisions as plain functions, usable outside a relay.
import { compressionPlanner, negotiateEncoding } from '@relay/body';

export function chooseCoding(acceptEncoding: string | undefined): string {
  return negotiateEncoding(acceptEncoding) ?? 'none acceptable'; // 'br', 'gzip', 'identity' or null
}

const plan = compressionPlanner({ threshold: 1024 });

export function wouldCompress(contentType: string, length: number, acceptEncoding: string) {
  return plan('GET', acceptEncoding, 200, { 'content-type': contentType, 'content-length': String(length) });
}
