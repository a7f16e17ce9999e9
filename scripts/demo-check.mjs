// Checks the README's first command end to end: starts the demo gateway (`pnpm demo` runs the same
// command) on a free port, requests through each of its relays, stops it with SIGINT and expects a
// clean exit (code 0). Then once more with UPSTREAM_URL pointing at a service of its own, and then
// `pnpm demo:gateway` (the same services behind `relay serve examples/gateway.yaml`).
//
//   node scripts/demo-check.mjs
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import WebSocket from 'ws';

const root = new URL('..', import.meta.url).pathname;

/** Starts the demo with `env`, resolves with its base URL, its output so far, and the process. */
async function startDemo(env) {
  const child = spawn(process.execPath, ['--conditions=source', '--import', './scripts/register.mjs', 'demo/gateway.ts'], {
    cwd: root,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const demo = { child, output: '', base: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => (demo.output += chunk));
  child.stderr.on('data', (chunk) => (demo.output += chunk));
  demo.base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the demo printed no URL within 30 s')), 30_000);
    const onData = () => {
      const match = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(demo.output);
      if (match === null) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve(match[1]);
    };
    child.stdout.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited before listening (code ${code}, signal ${signal})`));
    });
  });
  return demo;
}

/** SIGINT, then the exit code and signal (at most 20 s). */
async function stopDemo(demo) {
  const exited = once(demo.child, 'exit');
  demo.child.kill('SIGINT');
  const timer = setTimeout(() => demo.child.kill('SIGKILL'), 20_000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return { code, signal };
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Opens a WebSocket and collects its messages; resolves once `count` have arrived. */
function openSocket(url) {
  const socket = new WebSocket(url);
  const messages = [];
  const waiters = [];
  socket.on('message', (data) => {
    messages.push(String(data));
    for (const waiter of waiters.splice(0)) waiter();
  });
  const opened = new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket handshake answered ${res.statusCode}`)));
  });
  const closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
  async function receive(count, timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    while (messages.length < count) {
      check(Date.now() < deadline, `WebSocket: ${messages.length} of ${count} messages within ${timeoutMs} ms: ${JSON.stringify(messages)}`);
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return messages;
  }
  return { socket, opened, closed, receive };
}

async function checkEmbedded() {
  const demo = await startDemo({});
  const { base } = demo;
  try {
    const home = await fetch(`${base}/`);
    check(home.status === 200 && (await home.text()).includes('Relay demo gateway'), `GET / answered ${home.status}`);

    // Auth login through /auth: the upstream sets Domain=auth.internal; the relay's cookies() stage removes it.
    const login = await fetch(`${base}/auth/login`, { method: 'POST', body: 'user=ci', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const setCookie = login.headers.getSetCookie();
    check(login.status === 200, `POST /auth/login answered ${login.status}`);
    check(setCookie.length === 1 && setCookie[0].startsWith('session='), `login Set-Cookie: ${JSON.stringify(setCookie)}`);
    check(!/domain=/i.test(setCookie[0]), `the cookie still has a Domain: ${setCookie[0]}`);
    const me = await fetch(`${base}/auth/me`, { headers: { cookie: setCookie[0].split(';')[0] } });
    const meBody = await me.json();
    check(me.status === 200 && meBody.user === 'ci' && meBody.forwardedPrefix === '/auth', `GET /auth/me: ${me.status} ${JSON.stringify(meBody)}`);

    // The flaky endpoint fails its first call with 503; retry() sends the GET again.
    const flaky = await fetch(`${base}/auth/flaky`);
    const flakyBody = await flaky.json();
    check(flaky.status === 200 && flakyBody.calls === 2, `GET /auth/flaky: ${flaky.status} ${JSON.stringify(flakyBody)}`);
    check(demo.output.includes('retrying upstream request'), 'no retry line in the demo output');

    // A WebSocket through /chat: the room greets, then echoes to everyone in it.
    const chat = openSocket(`${base.replace('http:', 'ws:')}/chat/lobby`);
    await chat.opened;
    chat.socket.send('hello from the demo check');
    const messages = await chat.receive(2);
    check(messages[0].startsWith('welcome to #lobby'), `first chat message: ${messages[0]}`);
    check(messages[1] === '[#lobby] hello from the demo check', `echo: ${messages[1]}`);
    const rooms = await (await fetch(`${base}/chat/rooms`)).json();
    check(rooms.lobby === 1, `GET /chat/rooms: ${JSON.stringify(rooms)}`);

    // A traversal never reaches the upstream.
    const traversal = await fetch(`${base}/auth/..%2fsecret`);
    check(traversal.status === 400, `GET /auth/..%2fsecret answered ${traversal.status}`);

    // SIGINT with the WebSocket still open: it is closed with 1001 and the process exits 0.
    const { code, signal } = await stopDemo(demo);
    check(code === 0 && signal === null, `the demo exited with code ${code}, signal ${signal}`);
    check((await chat.closed) === 1001, 'the open WebSocket was not closed with 1001');
    check(demo.output.includes('stopped'), 'no "stopped" line');
  } catch (error) {
    demo.child.kill('SIGKILL');
    throw Object.assign(error, { output: demo.output });
  }
}

async function checkOwnUpstream() {
  const seen = [];
  const own = createServer((req, res) => {
    seen.push(req.url);
    res.end(`your service saw ${req.url}`);
  });
  await new Promise((resolve) => own.listen(0, '127.0.0.1', resolve));
  const demo = await startDemo({ UPSTREAM_URL: `http://127.0.0.1:${own.address().port}` });
  try {
    const response = await fetch(`${demo.base}/auth/orders?id=7`);
    const text = await response.text();
    check(response.status === 200 && text === 'your service saw /orders?id=7', `UPSTREAM_URL: ${response.status} ${text}`);
    const { code } = await stopDemo(demo);
    check(code === 0, `with UPSTREAM_URL the demo exited with code ${code}`);
  } catch (error) {
    demo.child.kill('SIGKILL');
    throw Object.assign(error, { output: demo.output });
  } finally {
    own.close();
    own.closeAllConnections();
  }
}

/** `pnpm demo:gateway`: the demo services with `relay serve examples/gateway.yaml` in front of them. */
async function checkGatewayFile() {
  const child = spawn(process.execPath, ['--conditions=source', '--import', './scripts/register.mjs', 'demo/gateway-file.ts'], {
    cwd: root,
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const demo = { child, output: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk) => (demo.output += chunk));
  child.stderr.on('data', (chunk) => (demo.output += chunk));
  try {
    const deadline = Date.now() + 30_000;
    let port = null;
    while (port === null) {
      check(Date.now() < deadline && child.exitCode === null, 'demo:gateway logged no "listening" line within 30 s');
      port = /"msg":"listening".*?"port":(\d+)/.exec(demo.output)?.[1] ?? null;
      if (port === null) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const base = `http://127.0.0.1:${port}`;
    // The hint names the port the gateway picked (PORT=0), once it listens.
    while (!demo.output.includes('try: ') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    check(demo.output.includes(`try: curl -i -d user=ada ${base}/auth/login`), `demo:gateway hint: ${demo.output.split('\n').find((line) => line.startsWith('try: '))}`);
    const login = await fetch(`${base}/auth/login`, { method: 'POST', body: 'user=ci', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const setCookie = login.headers.getSetCookie();
    check(login.status === 200 && setCookie.length === 1 && !/domain=/i.test(setCookie[0]), `demo:gateway login: ${login.status} ${JSON.stringify(setCookie)}`);
    const status = await (await fetch(`${base}/_relay/status.json`)).json();
    check(status.routes.map((route) => route.name).join() === 'auth,chat', `demo:gateway status: ${JSON.stringify(status.routes)}`);
    const { code, signal } = await stopDemo(demo);
    check(code === 0 && signal === null, `demo:gateway exited with code ${code}, signal ${signal}`);
  } catch (error) {
    child.kill('SIGKILL');
    throw Object.assign(error, { output: demo.output });
  }
}

try {
  await checkEmbedded();
  await checkOwnUpstream();
  await checkGatewayFile();
  console.log(
    'demo check passed: login cookie rewritten, failed attempt retried, WebSocket echoed through /chat, traversal refused (400), ' +
      'UPSTREAM_URL honoured, clean exit on SIGINT; demo:gateway (relay serve examples/gateway.yaml) served and stopped cleanly',
  );
} catch (error) {
  console.error(`demo check failed: ${error.message}`);
  if (error.output) console.error(`--- demo output ---\n${error.output}`);
  process.exit(1);
}
