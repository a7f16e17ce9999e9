// `pnpm demo:gateway`: the demo's embedded services, with the gateway built from a config file in
// front of them. Starts the auth and chat services of demo/services.ts on free ports, then runs the
// real bin, `relay serve examples/gateway.yaml`, with AUTH_URL and CHAT_URL pointing at them.
// PORT and HOST pass through to the config. Ctrl-C stops the gateway (it drains), then the services.
import { spawn } from 'node:child_process';
import { startAuthService, startChatService } from './services.js';

const root = new URL('..', import.meta.url).pathname;
const auth = await startAuthService();
const chat = await startChatService();
console.log(`demo services: auth ${auth.url}, chat ${chat.url}`);

const gateway = spawn(
  process.execPath,
  ['--conditions=source', '--import', './scripts/register.mjs', 'packages/gateway/bin/relay.mjs', 'serve', 'examples/gateway.yaml', ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, AUTH_URL: auth.url, CHAT_URL: chat.url } },
);
const port = process.env.PORT ?? '8080';
const base = port === '0' ? 'http://127.0.0.1:<port in the listening line>' : `http://127.0.0.1:${port}`;
console.log(`try: curl -i -d user=ada ${base}/auth/login   and the status page ${base}/_relay/status`);

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => gateway.kill(signal));
}
gateway.on('exit', (code) => {
  void Promise.all([auth.close(), chat.close()]).then(() => {
    process.exitCode = code ?? 1;
  });
});
