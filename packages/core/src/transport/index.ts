// @relay/core/transport, for authors of transports and front doors (and Relay's own packages):
// the transport contract and the helpers with a narrower audience than `@relay/core`'s.

// The transport contract.
export type { BoundTransport, TransportConfig } from '../types.js';
export type { AbortHandler, AnswerHandler } from '../request/client.js';

// Answering and logging as the relay does.
export { sendError } from '../relay/respond.js';
export { grpcStatusForHttp, isGrpcContentType, isLocalErrorAnswer, type ErrorAnswer } from '../relay/grpc-answer.js';
export { refuseUpgrade } from '../relay/upgrade.js';
export { isWebSocketUpgrade, serveAsPlainRequest } from '../relay/plain-upgrade.js';
export { assertLogger, loggableTarget, loggedPath, logUpstreamFailure, withoutUserinfo } from '../logger.js';

// Headers, paths and options checked as the relay checks them.
export { copyHeaders, hopByHopHeaders, responseHeadersFromRaw } from '../request/hop-by-hop.js';
export { assertSafePath, isValidAuthority, normalizePathOption } from '../request/path.js';
export { decodeUnreserved, encodeNonAscii, hasStrayPercent, normalizeEscapes, percentEncodeChar } from '../request/path-normalize.js';
export { unmapIPv4 } from '../request/trust-proxy.js';
export { assertNonNegative, assertTimeout, assertTimerDelay, maxTimerDelay, resolveTarget } from '../options.js';
export { nearestName } from '../known-keys.js';
