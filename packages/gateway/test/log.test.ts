// The bin's logger: JSON lines by default, readable lines on a terminal, levels below the threshold dropped.
import { Writable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../src/log.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY, lines });
}

test('JSON lines: time, level, msg, pid, base fields, then the fields; errors as message and code', () => {
  const out = sink(false);
  const logger = createLogger({ stream: out, base: { worker: 2 } });
  logger.info({ port: 8080, error: Object.assign(new Error('boom'), { code: 'EX' }) }, 'listening');
  const line = JSON.parse(out.lines[0]!) as Record<string, unknown>;
  assert.equal(Object.keys(line), ['time', 'level', 'msg', 'pid', 'worker', 'port', 'error']);
  assert.equal({ ...line, time: 0 }, { time: 0, level: 'info', msg: 'listening', pid: process.pid, worker: 2, port: 8080, error: { message: 'boom', code: 'EX' } });
  assert.ok(out.lines[0]!.endsWith('}\n'));
});

test('a terminal gets a readable line; debug is dropped at the default level', () => {
  const out = sink(true);
  const logger = createLogger({ stream: out });
  logger.debug({}, 'hidden');
  logger.warn({ route: 'api', code: 'ERR_X' }, 'upstream failed');
  assert.is(out.lines.length, 1);
  assert.match(out.lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} \x1b\[33mWARN \x1b\[0m upstream failed \x1b\[90mroute=api code=ERR_X\x1b\[0m\n$/);
});

test.run();
