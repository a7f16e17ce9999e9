// The transport conformance suite against the undici transport (`@relay/core/undici`).
import { suite } from 'uvu';
import { undiciTransport } from '@relay/core/undici';
import { registerConformance } from './cases.js';

const test = suite('undici transport');
registerConformance(test, { name: 'undici', upstream: 'network', create: (_listener, limits) => undiciTransport(limits) });
test.run();
