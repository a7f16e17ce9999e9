// @relay/core, for applications and stage authors: build a relay, write a stage, observe it.
// Transport and front-door authors have `@relay/core/transport`; the got transport is `@relay/core/got`.

// Building a relay.
export { createRelay } from './relay/relay.js';
export type { DispatchRoute, FetchClient, Relay, RelayOptions, RelayState } from './relay/api.js';
export { gatewayServerOptions } from './relay/server-options.js';
export { httpTransport, type HttpTransportOptions } from './transport/http.js';
export { http2Transport, type Http2TransportOptions } from './transport/http2.js';
export { inMemoryTransport } from './transport/memory.js';
export type { ForwardedHeaders } from './request/forwarding.js';
export type { TrustProxy } from './request/trust-proxy.js';
export type { Logger, Target, Timeouts, TlsOptions, Transport, UpgradeTransport } from './types.js';

// Errors: one class, stable codes.
export { RelayError, errorStatus, toRelayError, type RelayErrorCode, type RelayErrorOptions } from './errors.js';

// Writing a stage.
export type { Handler, HeaderRecord, HeaderValue, ProxyRequest, ProxyResponse, Stage, StageContext, UpgradeHandoff } from './types.js';
export { ClientInfo, type AnswerHandler, type ClientFacts } from './request/client.js';
export { AttemptBound } from './request/attempt-bound.js';
export { compose, stageContext } from './pipeline.js';
export { parseTarget } from './options.js';
export { assertKnownKeys } from './known-keys.js';
export { errorBody, textResponse } from './relay/respond.js';
export { silentLogger } from './logger.js';

// Observing: events on node:diagnostics_channel.
export {
  relayChannels,
  type AttemptErrorMessage,
  type AttemptMessage,
  type AttemptResponseMessage,
  type RelayLifecycleMessage,
  type RequestEndMessage,
  type RequestRefusedMessage,
  type RequestStartMessage,
} from './events.js';
