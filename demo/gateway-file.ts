// `pnpm demo:gateway`: the demo's embedded services, with the gateway built from a config file in
// front of them. Starts the auth and chat services of demo/services.ts on free ports, then runs the
// real bin, `relay serve examples/gateway.yaml`, with AUTH_URL and CHAT_URL pointing at them.
// PORT and HOST pass through to the config. Ctrl-C stops the gateway (it drains), then the services.
// The gateway's log goes through here, so the hint can name the port it listens on (PORT=0 picks one).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createLogger, logLevels, type LogLevel } from '@relay/gateway';
import { startAuthService, startChatService } from './services.js';

const root = new URL('..', import.meta.url).pathname;
const auth = await startAuthService();
const chat = await startChatService();
console.log(`demo services: auth ${auth.url}, chat ${chat.url}`);

const gateway = spawn(
  process.execPath,
  ['--conditions=source', '--import', './scripts/register.mjs', 'packages/gateway/bin/relay.mjs', 'serve', 'examples/gateway.yaml', ...process.argv.slice(2)],
  { cwd: root, stdio: ['inherit', 'pipe', 'inherit'], env: { ...process.env, AUTH_URL: auth.url, CHAT_URL: chat.url } },
);
// Piped, the gateway logs JSON lines: written on as they are, or as readable lines on a terminal.
const readable = process.stdout.isTTY === true ? createLogger({ level: 'debug', pretty: true }) : null;
let hinted = false;
createInterface({ input: gateway.stdout! }).on('line', (line) => {
  const entry = parsed(line);
  if (readable !== null && entry !== null) {
    const { time: _time, level, msg, pid: _pid, ...fields } = entry;
    readable[level as LogLevel](fields, String(msg));
  } else console.log(line);
  if (entry?.msg === 'listening' && !hinted) {
    hinted = true;
    const base = `http://127.0.0.1:${String(entry.port)}`;
    console.log(`try: curl -i -d user=ada ${base}/auth/login   and the status page ${base}/_relay/status`);
  }
});

function parsed(line: string): Record<string, unknown> | null {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    return logLevels.includes(entry.level as LogLevel) ? entry : null;
  } catch {
    return null;
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => gateway.kill(signal));
}
gateway.on('exit', (code) => {
  void Promise.all([auth.close(), chat.close()]).then(() => {
    process.exitCode = code ?? 1;
  });
});
