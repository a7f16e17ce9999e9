import { assertKnownKeys } from '@relay/core';

/**
 * Checks the facts object passed on each call of a `headerRules` applier (`hop`) or of a
 * `locationRewriter` (`client`): it must be an object, and a plain one (an object literal) must
 * have known keys only, so `{ shceme: 'https' }` throws naming "scheme" rather than rewriting for
 * `http` silently. Another object (a `ClientInfo`, which carries more) is read structurally.
 *
 * @example
 * checkCallFacts({ adress: '10.0.0.1' }, ['address', 'host', 'scheme', 'httpVersion'], 'headerRules: request hop');
 * // TypeError: headerRules: request hop: unknown option "adress" (did you mean "address"? …)
 */
export function checkCallFacts(value: unknown, known: readonly string[], where: string): void {
  if (value === null || typeof value !== 'object') throw new TypeError(`${where} must be an object: { ${known.join(', ')} }`);
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === Object.prototype || prototype === null) assertKnownKeys(value, known, where);
}
