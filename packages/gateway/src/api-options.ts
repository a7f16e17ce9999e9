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

/**
 * An optional option that must be of `type` when given: a TypeError naming it and what it takes.
 *
 * @example
 * checkOptional(options.limitStore, 'function', 'createGateway: limitStore', 'a function (limit id) => LimitStore');
 */
export function checkOptional(value: unknown, type: 'function' | 'object' | 'boolean', option: string, expected: string): void {
  if (value === undefined || (typeof value === type && value !== null)) return;
  throw new TypeError(`${option} must be ${expected}, got ${value === null ? 'null' : typeof value}`);
}

/** A port a listener takes: a whole number from 0 (any free port) to 65535. `--port` reads its text with it too. */
export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65_535;
}

/**
 * `serve`'s `port`, checked as `--port` is: a RangeError naming the option.
 *
 * @example
 * checkPort(options.port, 'serve: port'); // RangeError for '8080x', 70000 or 80.5
 */
export function checkPort(value: unknown, option: string): number {
  if (isPort(value)) return value;
  throw new RangeError(`${option} must be a port number from 0 to 65535, got ${JSON.stringify(value)}`);
}

/** How many workers to fork: a whole number from 1 to 1024 (more is a typo, not a machine). `--workers` reads its text with it too. */
export function isWorkerCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 1024;
}

/**
 * `runPrimary`'s `workers`, checked as `--workers` is: a RangeError naming the option.
 *
 * @example
 * checkWorkers(options.workers, 'runPrimary: workers'); // RangeError for -1 or 2.5
 */
export function checkWorkers(value: unknown, option: string): number {
  if (isWorkerCount(value)) return value;
  throw new RangeError(`${option} must be a number from 1 to 1024, got ${JSON.stringify(value)}`);
}
