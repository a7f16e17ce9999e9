import type { Handler, Stage } from './types.js';

/**
 * Wraps `inner` in `stages`, once: `stages[0]` is the outermost, it sees the request first
 * and the response last.
 *
 * @example
 * const handler = compose([retry(), headers({ dropRequest: ['cookie'] })], transportHandler);
 */
export function compose(stages: readonly Stage[], inner: Handler): Handler {
  let handler = inner;
  for (let index = stages.length - 1; index >= 0; index--) {
    const stage = stages[index]!;
    const wrapped = stage.wrap(handler);
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
