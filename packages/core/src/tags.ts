// The symbol tags of the per-request hot path, in one place. Module-level listeners find their
// object through these tags: on this path a closure per listener was measured to cost (issue 8's
// benchmarks). Cold paths (a WebSocket handshake or session, the got transport's own events,
// the lifecycle) use plain closures instead.

/** On a `ServerResponse` and on the response body it pipes: the HTTP exchange they serve. */
export const kExchange = Symbol('relay.exchange');
/** On a client socket: the exchanges still open on it (pipelined requests). */
export const kSocketExchanges = Symbol('relay.socketExchanges');
/** On an upstream `ClientRequest` and on the request body piped into it: the attempt they serve. */
export const kAttempt = Symbol('relay.attempt');
/** On a pooled upstream socket: the attempt using it now, `null` while it idles. */
export const kSocketAttempt = Symbol('relay.socketAttempt');
/** On an observed response body: the attempt message its end is published with. */
export const kAttemptMessage = Symbol('relay.events.attempt');
/** On an upstream HTTP/2 stream and on the request body piped into it: the HTTP/2 attempt they serve. */
export const kHttp2Attempt = Symbol('relay.http2Attempt');
