// A transformed route serves whole bodies only (prepareForTransform drops every `Range`): what its
// responses may say about ranges.
import { RelayError, type ProxyRequest, type ProxyResponse, type StageContext } from '@relay/core';
import { loggedPath } from '@relay/core/transport';

/**
 * Makes a response say what a route that drops `Range` does. No `Accept-Ranges` on any response,
 * read by the stage or left alone (RFC 9110 §14.3: a client would send a `Range` and get the whole
 * body). A 206 to a request whose `Range` was dropped answers no range the client was promised (its
 * `If-Range` went too, so the bytes may be of another version): 502 (`ERR_UPSTREAM_PROTOCOL`) rather
 * than a piece the client would splice into its copy.
 *
 * @example
 * const rangeDropped = prepareForTransform(request);
 * const response = wholeOnly(await next(request), rangeDropped, context, request);
 */
export function wholeOnly(response: ProxyResponse, rangeDropped: boolean, context: StageContext, request: ProxyRequest): ProxyResponse {
  const headers = response.headers;
  if (headers['accept-ranges'] !== undefined) delete headers['accept-ranges'];
  if (rangeDropped && response.status === 206) throw unaskedPartial(context, request, response);
  return response;
}

function unaskedPartial(context: StageContext, request: ProxyRequest, response: ProxyResponse): RelayError {
  response.body?.destroy();
  const relayError = new RelayError('ERR_UPSTREAM_PROTOCOL', 'a 206 to a request whose Range the transform dropped');
  context.logger.error(
    { method: request.method, path: loggedPath(request.path, context), status: 206, code: relayError.code },
    'response transform: a partial response the route did not ask for: 502 sent',
  );
  return relayError;
}
