export { websocket, type WebSocketOptions } from './websocket.js';
