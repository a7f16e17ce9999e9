// The per-call facts objects of @relay/headers (a headerRules hop, a locationRewriter client)
// reject an unknown key with a TypeError naming the nearest valid one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { headerRules, locationRewriter, type HopFacts, type LocationClient } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

test('headerRules request(headers, { adress }) names "address"; { httpVerison } names "httpVersion"', () => {
  assert.throws(() => headerRules({ forwarded: true }).request({}, { adress: '10.0.0.1', host: 'gw', scheme: 'https' } as unknown as HopFacts), unknownKey('adress', 'address'));
  // Without forwarded only httpVersion is read: a misspelled one made Via say 1.1 silently.
  assert.throws(() => headerRules({ via: true }).request({}, { httpVerison: '2.0' } as unknown as HopFacts), unknownKey('httpVerison', 'httpVersion'));
  assert.throws(() => headerRules({ via: true }).request({}, '2.0' as unknown as HopFacts), (error: Error) => error instanceof TypeError && /hop must be an object/.test(error.message));
});

test('locationRewriter(location, { shceme }) names "scheme"', () => {
  const rewrite = locationRewriter({ targetBaseUrl: 'http://auth:8000', mountPath: '/auth' });
  assert.throws(() => rewrite('http://auth:8000/x', { shceme: 'https', host: 'gw.example' } as unknown as LocationClient), unknownKey('shceme', 'scheme'));
  assert.throws(() => rewrite('http://auth:8000/x', 'https' as unknown as LocationClient), (error: Error) => error instanceof TypeError && /client must be an object/.test(error.message));
  // An object that is not a literal (a ClientInfo, which carries more) is still read structurally.
  class Client {
    readonly scheme = 'https' as const;
    readonly host = 'gw.example';
    readonly mountPath = '/auth';
  }
  assert.is(rewrite('http://auth:8000/x', new Client()), 'https://gw.example/auth/x');
});

test.run();
