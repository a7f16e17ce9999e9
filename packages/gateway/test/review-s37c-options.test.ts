// Review s37c (gateway): createLogger's level, and `relay check` on options the stages reject.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../src/index.js';

const bin = fileURLToPath(new URL('../bin/relay.mjs', import.meta.url));

test('createLogger({ level: "inf" }) throws a TypeError naming level and "info"', () => {
  // today: indexOf('inf') is -1, so every level (debug included) is written
  assert.throws(() => createLogger({ level: 'inf' as never, stream: { write: () => true } as never }), (e: Error) => e instanceof TypeError && /level/.test(e.message) && /info/.test(e.message));
});

const yamlCases: Array<[string, string, RegExp]> = [
  ['balance.outlier.errors with a misspelled code', '    balance:\n      outlier:\n        errors: [ERR_UPSTREAM_UNREACHBLE]\n', /:8:[^\n]*outlier\.errors[^\n]*ERR_UPSTREAM_UNREACHABLE/],
];
for (const [name, tail, message] of yamlCases) {
  test(`relay check rejects ${name}, naming the line`, () => {
    const dir = mkdtempSync(join(tmpdir(), 's37c-'));
    try {
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, `listen:\n  - port: 8080\nroutes:\n  - match: { path: /api }\n    upstream: [http://127.0.0.1:9000, http://127.0.0.1:9001]\n${tail}`);
      const run = spawnSync(process.execPath, [bin, 'check', file], { encoding: 'utf8', timeout: 20_000 });
      assert.is.not(run.status, 0, `relay check accepted it: ${run.stdout}`);
      assert.match(run.stdout + run.stderr, message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
test.run();
