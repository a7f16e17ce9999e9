import { RelayError, assertKnownKeys, compose, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type StageContext } from '@relay/core';
import { compileConditions, type Conditions, type Matcher } from './conditions.js';
import { assertStageValue } from './when.js';

/** One route of `routes`: its conditions (none: every request) and the stages it runs. */
export interface Route {
  /** What a request must match to take this route; omitted, the route takes every request. */
  when?: Conditions;
  /** The stages of this route, outermost first, in front of the rest of the relay's pipeline. */
  stages: readonly Stage[];
}

const routeKeys = ['when', 'stages'] as const;

interface CompiledRoute {
  matches: Matcher | null;
  stages: readonly Stage[];
}

/**
 * Several routes in one relay, without an outer router: the first route whose conditions
 * match runs its stages, then the rest of the pipeline. A request no route matches gets 404
 * (`ERR_NOT_MOUNTED`); end with a route without `when` to catch the rest instead.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://backend:8000',
 *   stages: [
 *     routes([
 *       { when: { path: '/api/v1/**' }, stages: [rewritePath({ '/api/v1': '/v1' })] },
 *       { when: { host: '*.admin.example.com' }, stages: [headers({ set: { 'x-admin': '1' } })] },
 *       { stages: [] },
 *     ]),
 *   ],
 * });
 */
export function routes(list: readonly Route[]): Stage {
  if (!Array.isArray(list) || list.length === 0) throw new TypeError('routes(list) needs a non-empty array of { when, stages }');
  const compiled = list.map(compileRoute);
  return {
    name: 'routes',
    wrap(next: Handler, context: StageContext): Handler {
      const handlers = compiled.map((route) => ({ matches: route.matches, handler: compose(route.stages, next, context) }));
      return function routesStage(request: ProxyRequest): Promise<ProxyResponse> {
        for (const route of handlers) {
          if (route.matches === null || route.matches(request, context)) return route.handler(request);
        }
        return Promise.reject(new RelayError('ERR_NOT_MOUNTED', 'no route matches the request'));
      };
    },
  };
}

function compileRoute(route: Route, index: number): CompiledRoute {
  const where = `routes[${index}]`;
  if (route === null || typeof route !== 'object') throw new TypeError(`${where} must be an object { when, stages }`);
  assertKnownKeys(route, routeKeys, where);
  if (!Array.isArray(route.stages)) throw new TypeError(`${where}.stages must be an array of stages ([] for none)`);
  route.stages.forEach((stage, position) => assertStageValue(stage, `${where}.stages[${position}]`));
  return { matches: route.when === undefined ? null : compileConditions(route.when, `${where}.when`), stages: route.stages };
}
