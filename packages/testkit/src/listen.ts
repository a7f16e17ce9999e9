import type { AddressInfo, Server as NetServer } from 'node:net';

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
