import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Http2SecureServer, Http2Server, Http2Session } from 'node:http2';

/** Listens on 127.0.0.1 on a free port and returns `http://127.0.0.1:port`. */
export async function listen(server: NetServer): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An HTTP/2 server listening on 127.0.0.1, and how to close it with the sessions it holds. */
export interface ListeningHttp2 {
  url: string;
  close(): Promise<void>;
}

/**
 * Listens like `listen`, and keeps the server's sessions: `close()` destroys them first, since
 * `server.close()` alone waits for every client session to end.
 */
export async function listenHttp2(server: Http2Server | Http2SecureServer): Promise<ListeningHttp2> {
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  const url = await listen(server);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
