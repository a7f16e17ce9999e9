import { assertKnownKeys } from './known-keys.js';
import { silentLogger } from './logger.js';
import { defaultTimeouts, resolveTimeouts } from './options.js';
import type { Handler, Stage, StageContext } from './types.js';

const localTarget = Object.freeze({
  protocol: 'http:',
  hostname: 'localhost',
  port: 80,
  host: 'localhost',
  origin: 'http://localhost',
  basePath: '',
} as const);

const noTls = Object.freeze({});
const contextKeys: readonly (keyof StageContext)[] = ['logger', 'target', 'timeouts', 'logQuery', 'tls'];

/**
 * A `StageContext` for using a stage outside a relay (tests, other pipelines): a silent
 * logger, the default timeouts, a `http://localhost` target, no TLS settings and no query strings
 * in log lines unless given. Unknown keys throw, naming the nearest valid one.
 *
 * @example
 * const handler = headers({ dropRequest: ['cookie'] }).wrap(fakeNext, stageContext());
 */
export function stageContext(overrides: Partial<StageContext> = {}): StageContext {
  if (overrides === null || typeof overrides !== 'object') throw new TypeError('stageContext(overrides) needs an object: { logger, target, timeouts, logQuery, tls }');
  assertKnownKeys(overrides, contextKeys, 'stageContext()');
  return {
    logger: overrides.logger ?? silentLogger,
    target: overrides.target ?? localTarget,
    // Checked as the relay checks its own: stages feed them to timers.
    timeouts: overrides.timeouts === undefined ? defaultTimeouts : resolveTimeouts(overrides.timeouts, 'stageContext().timeouts'),
    logQuery: overrides.logQuery ?? false,
    tls: overrides.tls ?? noTls,
  };
}

/**
 * Wraps `inner` in `stages`, once: `stages[0]` is the outermost, it sees the request first
 * and the response last.
 *
 * @example
 * const handler = compose([retry(), headers({ dropRequest: ['cookie'] })], transportHandler);
 */
export function compose(stages: readonly Stage[], inner: Handler, context: StageContext = stageContext()): Handler {
  let handler = inner;
  for (let index = stages.length - 1; index >= 0; index--) {
    const stage = stages[index]!;
    const wrapped = stage.wrap(handler, context);
    if (typeof wrapped !== 'function') {
      throw new TypeError(`stage "${stage.name}" wrap() must return a handler function`);
    }
    handler = wrapped;
  }
  return handler;
}

/**
 * Checks that a value is a stage, naming the option when it is not.
 */
export function assertStage(value: unknown, option: string): asserts value is Stage {
  const stage = value as Partial<Stage> | null;
  if (stage === null || typeof stage !== 'object' || typeof stage.wrap !== 'function' || typeof stage.name !== 'string') {
    throw new TypeError(`${option} must be a stage: an object with a name and a wrap(next) function`);
  }
}
