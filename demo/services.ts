// The private services the demo gateway starts for itself on 127.0.0.1 (random ports): an auth
// service and a chat service. In a real deployment these run elsewhere and only the gateway is
// public; here they are embedded so `pnpm demo` needs nothing else.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/** A started service: its URL for `targetBaseUrl`, and a way to stop it. */
export interface Service {
  url: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 4096) req.destroy(new Error('body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const pair of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = pair.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/**
 * The auth service. It believes it lives at `auth.internal`, so its cookies say
 * `Domain=auth.internal`: a browser (or curl's cookie jar) on the gateway's host would refuse them
 * unless the relay rewrites them.
 *
 *   POST /login   user=<name> (form or JSON)  → 200, Set-Cookie: session=…; Domain=auth.internal
 *   GET  /me      with the session cookie     → 200 { user } or 401
 *   POST /logout                              → 200, the cookie expired
 *   GET  /flaky   every other call fails with 503 (the first one does): retry() hides it
 */
export async function startAuthService(): Promise<Service> {
  const sessions = new Map<string, string>();
  let flakyCalls = 0;
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://auth.internal');
    try {
      if (req.method === 'POST' && pathname === '/login') {
        const body = await readBody(req);
        const user = (req.headers['content-type'] ?? '').includes('json')
          ? String((JSON.parse(body || '{}') as { user?: unknown }).user ?? '')
          : (new URLSearchParams(body).get('user') ?? '');
        if (!/^[\w.-]{1,40}$/.test(user)) {
          json(res, 400, { error: 'send user=<name>, letters and digits' });
          return;
        }
        const session = randomUUID();
        sessions.set(session, user);
        json(res, 200, { message: `welcome, ${user}`, hint: 'the session cookie came back without Domain=auth.internal' }, {
          'set-cookie': `session=${session}; Domain=auth.internal; Path=/; HttpOnly; SameSite=Lax`,
        });
        return;
      }
      if (req.method === 'GET' && pathname === '/me') {
        const user = sessions.get(cookie(req, 'session') ?? '');
        if (user === undefined) json(res, 401, { error: 'no session: POST /auth/login first, and send its cookie back' });
        else json(res, 200, { user, forwardedFor: req.headers['x-forwarded-for'], forwardedPrefix: req.headers['x-forwarded-prefix'] });
        return;
      }
      if (req.method === 'POST' && pathname === '/logout') {
        sessions.delete(cookie(req, 'session') ?? '');
        json(res, 200, { message: 'bye' }, { 'set-cookie': 'session=; Domain=auth.internal; Path=/; Max-Age=0' });
        return;
      }
      if (pathname === '/flaky') {
        flakyCalls++;
        if (flakyCalls % 2 === 1) json(res, 503, { error: 'warming up, try again' });
        else json(res, 200, { message: 'ok: the call before this one failed with 503 and the relay retried', calls: flakyCalls });
        return;
      }
      if (pathname === '/') {
        json(res, 200, { service: 'auth', endpoints: ['POST /login', 'GET /me', 'POST /logout', 'GET /flaky'] });
        return;
      }
      json(res, 404, { error: `auth service has no ${req.method} ${pathname}` });
    } catch {
      if (!res.headersSent) json(res, 400, { error: 'bad request body' });
    }
  });
  const url = await listen(server);
  return { url, close: () => stop(server) };
}

/**
 * The chat service: WebSocket rooms by path (`/lobby`, `/random` …). Each message is sent to
 * everyone in the room, its sender included. `GET /rooms` lists the rooms over plain HTTP.
 */
export async function startChatService(): Promise<Service> {
  const rooms = new Map<string, Set<WebSocket>>();
  const server = createServer((req, res) => {
    if (req.url === '/rooms') json(res, 200, Object.fromEntries([...rooms].map(([room, members]) => [room, members.size])));
    else json(res, 404, { error: 'open a WebSocket to /<room>, or GET /rooms' });
  });
  const wss = new WebSocketServer({ server, maxPayload: 64 * 1024 });
  wss.on('connection', (socket, req) => {
    const room = (new URL(req.url ?? '/', 'http://chat.internal').pathname.slice(1) || 'lobby').slice(0, 40);
    const members = rooms.get(room) ?? new Set<WebSocket>();
    rooms.set(room, members);
    members.add(socket);
    socket.send(`welcome to #${room} (${members.size} here)`);
    socket.on('message', (data, isBinary) => {
      const text = isBinary ? `<${(data as Buffer).length} bytes>` : String(data);
      for (const member of members) member.send(`[#${room}] ${text}`);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      members.delete(socket);
      if (members.size === 0) rooms.delete(room);
    });
  });
  const url = await listen(server);
  return {
    url,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await stop(server);
    },
  };
}
