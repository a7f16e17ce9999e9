import type { Handler, ProxyRequest, ProxyResponse, Stage, StageContext } from '@relay/core';
import { compileConditions, type Conditions } from './conditions.js';

/**
 * Runs `stage` only for requests that match `conditions` (method, host with a leading
 * wildcard, header, path glob: all given must hold); the others skip it and go straight to
 * the next stage. Conditions are compiled once; a request pays a few comparisons.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://api:8000',
 *   stages: [when({ method: ['POST', 'PUT'], path: '/orders/**' }, retry({ maxRetries: 0 }))],
 * });
 */
export function when(conditions: Conditions, stage: Stage): Stage {
  const matches = compileConditions(conditions, 'when');
  assertStageValue(stage, 'when(conditions, stage): stage');
  return {
    name: `when(${stage.name})`,
    wrap(next: Handler, context: StageContext): Handler {
      const inner = stage.wrap(next, context);
      return function whenStage(request: ProxyRequest): Promise<ProxyResponse> {
        return matches(request, context) ? inner(request) : next(request);
      };
    },
  };
}

/**
 * Throws a TypeError naming `option` when `value` is not a stage.
 *
 * @example
 * assertStageValue(headers({ drop: ['cookie'] }), 'stages[0]'); // fine
 */
export function assertStageValue(value: unknown, option: string): asserts value is Stage {
  const stage = value as Partial<Stage> | null;
  if (stage === null || typeof stage !== 'object' || typeof stage.wrap !== 'function' || typeof stage.name !== 'string') {
    throw new TypeError(`${option} must be a stage: an object with a name and a wrap(next, context) function`);
  }
}
