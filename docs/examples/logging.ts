// docs/logging.md: a pino-style logger for Relay. logging.test.ts gives it to relays that fail,
// retry and refuse, and checks the lines it writes.
import { createRelay, type Logger, type Relay } from '@relay/core';
import { retry } from '@relay/retry';

type Level = 'debug' | 'info' | 'warn' | 'error';
const levels: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** One JSON object per line, like pino's output: `{"level":"warn","time":…,"msg":…,…fields}`. */
export function jsonLogger(minimum: Level = 'info', write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Logger {
  const at = (level: Level) =>
    levels[level] < levels[minimum]
      ? () => {}
      : (fields: Record<string, unknown>, msg: string) => write(JSON.stringify({ level, time: Date.now(), msg, ...fields }));
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function loggedRelay(upstream = 'http://upstream:8000', logger: Logger = jsonLogger('info')): Relay {
  return createRelay({
    targetBaseUrl: upstream,
    logger, // pino works as is: createRelay({ logger: pino() })
    stages: [retry({ maxRetries: 1, backoffFactor: 100 })],
  });
}
