export { ClientInfo, type AbortHandler, type ClientFacts } from './request/client.js';
export { RelayError, errorStatus, toRelayError, type RelayErrorCode } from './errors.js';
export {
  relayChannels,
  type AttemptErrorMessage,
  type AttemptMessage,
  type AttemptResponseMessage,
  type RelayLifecycleMessage,
  type RequestEndMessage,
  type RequestStartMessage,
} from './events.js';
export {
  copyRequestHeaders,
  resolveForwardedHeaders,
  setForwardingHeaders,
  type ForwardedHeaders,
  type ForwardingFacts,
  type ForwardingPolicy,
  type RequestHeadFacts,
} from './request/forwarding.js';
export { connectionListed, copyEndToEndHeaders, copyHeaders, headerString, hopByHopHeaders, responseHeadersFromRaw } from './request/hop-by-hop.js';
export { httpTransport, type HttpTransportOptions } from './transport/http.js';
export { inMemoryTransport } from './transport/memory.js';
export { assertKnownKeys, nearestName } from './known-keys.js';
export { loggedPath, logUpstreamFailure, silentLogger } from './logger.js';
export { assertNonNegative, defaultTimeouts, resolveTimeouts } from './options.js';
export { resolveTarget } from './options.js';
export { assertSafePath, mapRequestPath, normalizePathOption } from './request/path.js';
export { assertStage, compose, stageContext } from './pipeline.js';
export { createRelay, type DispatchRoute, type Relay, type RelayOptions, type RelayState } from './relay/relay.js';
export { errorBody, sendError } from './relay/respond.js';
export { gatewayServerOptions } from './relay/server-options.js';
export { resolveTrustProxy, trustsPeer, unmapIPv4, type TrustProxy } from './request/trust-proxy.js';
export { refuseUpgrade } from './relay/upgrade.js';
export type {
  BoundTransport,
  Handler,
  HeaderRecord,
  HeaderValue,
  Logger,
  ProxyRequest,
  ProxyResponse,
  Stage,
  StageContext,
  Target,
  Timeouts,
  TlsOptions,
  Transport,
  TransportConfig,
  UpgradeHandoff,
  UpgradeTransport,
} from './types.js';
