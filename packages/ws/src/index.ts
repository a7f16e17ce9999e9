export { websocket, type WebSocketOptions } from './websocket.js';
export type { MessageContext, MessageHook, MessageLimits, MessageVerdict, PolicyOptions, WebSocketMessage } from './policy.js';
