// Review s40: transport options are checked when the factory is called: a value the transport
// would read differently from what it says (a fraction of a stream, a media type that can never
// match) is a TypeError/RangeError naming the option, not a setting that silently does something else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { http2Transport, httpTransport } from '../src/index.js';

test('http2Transport({ maxConcurrentStreams: 1.5 }) is a RangeError naming maxConcurrentStreams, as maxSessions: 1.5 is', () => {
  assert.throws(() => http2Transport({ maxSessions: 1.5 }), (error: Error) => error instanceof RangeError && /maxSessions/.test(error.message));
  // Today accepted: `active < 1.5` lets 2 streams open on a session asked to carry at most 1.5.
  assert.throws(() => http2Transport({ maxConcurrentStreams: 1.5 }), (error: Error) => error instanceof RangeError && /maxConcurrentStreams/.test(error.message));
});

test('httpTransport eventStreams: an entry that can never match a Content-Type is refused naming eventStreams', () => {
  // Compared with the response's media type without its parameters, lowercased: these never match.
  for (const entry of ['text/event-stream; charset=utf-8', 'text/*', 'event-stream', '']) {
    assert.throws(
      () => httpTransport({ eventStreams: [entry] }),
      (error: Error) => (error instanceof TypeError || error instanceof RangeError) && /eventStreams/.test(error.message),
      `accepted eventStreams: [${JSON.stringify(entry)}]`,
    );
  }
});

test.run();
