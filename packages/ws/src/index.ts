export { websocket, type WebSocketOptions } from './websocket.js';
export type { MessageContext, MessageHook, MessageLimits, MessageVerdict, PolicyOptions, WebSocketMessage } from './policy.js';
export { webSocketCounts, type WebSocketCounts } from './counts.js';
