import { assertKnownKeys, parseTarget, RelayError, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type StageContext, type Target } from '@relay/core';
import { splitUpstreamPath } from './upstream-path.js';

/** Options of `router()`. */
export interface RouterOptions {
  /**
   * Every upstream the router may send a request to, by name: `{ eu: 'http://eu-api:8000' }`. The
   * relay can never be steered anywhere else, whatever `choose` returns.
   */
  targets: Readonly<Record<string, string>>;
  /**
   * Picks the upstream of a request, sync or async: a name from `targets`, or `undefined` for the
   * relay's own `targetBaseUrl`. A name that is not in `targets` answers 500 and is logged.
   */
  choose: (request: ProxyRequest) => string | undefined | Promise<string | undefined>;
}

const optionNames: readonly string[] = ['targets', 'choose'];

/**
 * A stage that chooses the upstream per request from an allow-list built with the relay (HPM's
 * `router`, reply-from's `getUpstream`, without their open door: a chooser that returns an
 * arbitrary URL gets a 500, never a request to that URL). The path keeps its place under the
 * chosen target's base path; `Host` becomes the chosen target's.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://api-default:8000',
 *   stages: [router({ targets: { eu: 'http://api-eu:8000', us: 'http://api-us:8000' }, choose: (request) => request.headers['x-region'] as string | undefined })],
 * });
 */
export function router(options: RouterOptions): Stage {
  if (options === null || typeof options !== 'object') throw new TypeError('router(options) needs an options object: { targets, choose }');
  assertKnownKeys(options, optionNames, 'router');
  if (typeof options.choose !== 'function') throw new TypeError('router: choose must be a function of the request');
  const targets = parseTargets(options.targets);
  const choose = options.choose;
  return {
    name: 'router',
    wrap(next: Handler, context: StageContext): Handler {
      const base = context.target.basePath;
      return async function routerStage(request: ProxyRequest): Promise<ProxyResponse> {
        const name = await choose(request);
        if (name === undefined) return next(request);
        const target = Object.hasOwn(targets, name) ? targets[name]! : null;
        if (target === null) throw outsideAllowList(context, request, name);
        const response = await next({ ...request, target, path: moveUnder(request.path, base, target.basePath) });
        // Named on the answer, for stages outside retry() (`ProxyResponse.target`).
        response.target = target;
        return response;
      };
    },
  };
}

/**
 * `path` moved from under `from` to under `to`, the query kept byte for byte. The bare base (the
 * client's bare mount) becomes the bare `to`, or `/` when `to` has no path, as core maps it: a
 * path must start with "/" (`''` or `'?x=1'` is refused upstream with 400).
 */
function moveUnder(path: string, from: string, to: string): string {
  const parts = splitUpstreamPath(path, from);
  const bare = parts.base !== '' && parts.base.length + parts.query.length === path.length;
  return to + (bare && to !== '' ? '' : parts.path) + parts.query;
}

function parseTargets(value: unknown): Record<string, Target> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError('router: targets must be an object of names and upstream URLs');
  const parsed: Record<string, Target> = Object.create(null) as Record<string, Target>;
  for (const [name, url] of Object.entries(value)) {
    if (typeof url !== 'string') throw new TypeError(`router: targets.${name} must be an upstream URL string`);
    parsed[name] = parseTarget(url);
  }
  return parsed;
}

function outsideAllowList(context: StageContext, request: ProxyRequest, name: string): RelayError {
  // The chooser's answer may be a whole URL a client put in a header: logged cut short, never followed.
  context.logger.error({ method: request.method, choice: name.slice(0, 100) }, 'router chose a target outside its allow-list: answered 500');
  return new RelayError('ERR_INTERNAL', 'router chose a target outside its allow-list');
}
