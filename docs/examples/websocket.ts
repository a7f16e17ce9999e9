// docs/websocket.md: WebSocket relaying with @relay/ws. websocket.test.ts runs both relays
// against real `ws` upstreams (one over TLS) with real `ws` clients.
import http from 'node:http';
import { createRelay, type Relay } from '@relay/core';
import { websocket } from '@relay/ws';

export async function chatGateway(chatService = 'http://chat-service:8000', port = 8080) {
  const proxy = createRelay({
    targetBaseUrl: chatService,
    mountPath: '/ws',
    websocket: websocket(),
  });
  await proxy.startup();

  const server = http.createServer(proxy.handle); // HTTP under /ws
  server.on('upgrade', proxy.upgrade);            // WebSocket under /ws
  server.listen(port);

  // ws://app/ws/room → ws://chat-service:8000/room
  // An https:// target gives wss:// (certificates verified; `tls: { ca }` for a private CA).

  async function stop() {
    await proxy.shutdown(); // relayed sessions get close 1001
    server.close();
  }
  process.once('SIGTERM', stop);
  return { server, proxy, stop };
}

export function tunedChatRelay(internalCa: string | Buffer, chatService = 'https://chat.internal'): Relay {
  return createRelay({
    targetBaseUrl: chatService,
    tls: { ca: internalCa },
    timeout: { connect: 2_000, read: 10_000 }, // the handshake, as for HTTP
    websocket: websocket({
      idleTimeout: 60_000,     // close sessions silent for 1 min (1001; default 5 min)
      maxPayload: 1024 * 1024, // refuse messages over 1 MiB (1009)
      highWaterMark: 256 * 1024,
      closeTimeout: 5_000,     // a peer that never answers a close frame is disconnected
    }),
  });
}

export function moderatedChatRelay(chatService = 'http://chat-service:8000'): Relay {
  return createRelay({
    targetBaseUrl: chatService,
    // Any message policy makes sessions terminating: the relay reads every message.
    websocket: websocket({
      onClientMessage: (message) => {
        if (!message.isBinary && message.data.includes('spam')) return { close: 'no spam' }; // 1008 to both sides
        return undefined; // pass it on as it is
      },
      onUpstreamMessage: (message) => (message.data.length === 0 ? 'drop' : undefined),
      limits: { client: { maxMessageBytes: 64 * 1024, messagesPerSecond: 20 } }, // 1009 / 1008
      // Set at the handshake: the session ends with 1008 "session expired" when the token does.
      deadline: (request) => Number(request.headers['x-token-expires']) || null,
    }),
  });
}
