// The transport conformance suite against the HTTP/2 transport, with an h2c upstream.
import { suite } from 'uvu';
import { http2Transport } from '../../src/index.js';
import { registerConformance } from './cases.js';

const test = suite('http2 transport');
// `maxSockets` of a case is the number of requests the upstream may serve at once: streams on the one session.
registerConformance(test, {
  name: 'http2',
  upstream: 'http2',
  create: (_listener, limits) => http2Transport(limits.maxSockets === undefined ? {} : { maxConcurrentStreams: limits.maxSockets }),
});
test.run();
