import { test } from 'uvu';
import { websocketFaults } from './websocket.js';

test('500 WebSocket sessions talking while 10% of upstream sockets are killed: every client told (close code), none hung', async () => {
  await websocketFaults(500);
});

test.run();
