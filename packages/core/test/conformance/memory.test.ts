// The transport conformance suite against the in-memory transport: the upstream listener runs
// in this process, with no socket between the relay and it.
import { suite } from 'uvu';
import { inMemoryTransport } from '../../src/index.js';
import { registerConformance } from './cases.js';

const test = suite('in-memory transport');
registerConformance(test, { name: 'memory', upstream: 'memory', create: (listener) => inMemoryTransport(listener) });
test.run();
