// The transport conformance suite against the default node:http transport.
import { suite } from 'uvu';
import { httpTransport } from '../../src/index.js';
import { registerConformance } from './cases.js';

const test = suite('http transport');
registerConformance(test, { name: 'http', upstream: 'network', create: (_listener, limits) => httpTransport(limits) });
test.run();
