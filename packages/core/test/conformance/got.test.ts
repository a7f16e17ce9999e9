// The transport conformance suite against the got transport (`@relay/core/got`).
import { suite } from 'uvu';
import { gotTransport } from '@relay/core/got';
import { registerConformance } from './cases.js';

const test = suite('got transport');
registerConformance(test, { name: 'got', upstream: 'network', create: (_listener, limits) => gotTransport(limits) });
test.run();
