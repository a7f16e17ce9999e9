import { assertKnownKeys } from '@relay/core';

/**
 * Checks an options object of the gateway's programmatic API (`serve`, `createGateway`,
 * `createLogger`, `runPrimary` …) as every Relay options object is checked: a non-object is a
 * TypeError, an unknown key a TypeError naming the nearest valid one. (The config file's keys
 * are the schema's to check, as a `ConfigError`.)
 *
 * @example
 * checkApiOptions({ confg: 'gateway.yaml' }, ['config', 'port'], 'serve');
 * // TypeError: serve: unknown option "confg" (did you mean "config"? expected one of config, port)
 */
export function checkApiOptions(options: unknown, known: readonly string[], where: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${where}(options) needs an options object: { ${known.join(', ')} }`);
  assertKnownKeys(options, known, where);
}
