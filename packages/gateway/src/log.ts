import type { Logger } from '@relay/core';
import { assertLogger, nearestName } from '@relay/core/transport';
import { checkApiOptions, checkOptional } from './api-options.js';

/**
 * Log levels, least severe first.
 *
 * @example
 * logLevels.includes('warn'); // true
 */
export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
/** A log level name. */
export type LogLevel = (typeof logLevels)[number];

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** The least severe level written. Default `info`. */
  level?: LogLevel;
  /** Human-readable lines instead of JSON. Default: when the stream is a terminal. */
  pretty?: boolean;
  /** Where lines go. Default `process.stdout`. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Fields on every line, e.g. `{ worker: 2 }`. */
  base?: Record<string, unknown>;
}

const loggerOptionNames: readonly string[] = ['level', 'pretty', 'stream', 'base'];

/**
 * A pino-style logger writing one JSON object per line (`time`, `level`, `msg`, `pid`, then the
 * fields), or a readable line when the output is a terminal.
 *
 * @example
 * const logger = createLogger({ level: 'info' });
 * logger.info({ port: 8080 }, 'listening');
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  checkApiOptions(options, loggerOptionNames, 'createLogger');
  checkOptional(options.pretty, 'boolean', 'createLogger: pretty', 'true or false');
  // A string base would spread into every line as "0", "1" … fields, a class instance as its internals.
  if (options.base !== undefined && !isPlainObject(options.base)) {
    throw new TypeError(`createLogger: base must be a plain object of fields, e.g. { worker: 2 }, got ${options.base === null ? 'null' : typeof options.base}`);
  }
  const stream = options.stream ?? process.stdout;
  const pretty = options.pretty ?? stream.isTTY === true;
  const threshold = logLevels.indexOf(options.level ?? 'info');
  // An unknown level would be -1: every line written, debug included.
  if (threshold === -1) throw new TypeError(`createLogger: level must be one of ${logLevels.join(', ')}${nearestLevel(String(options.level))}`);
  const base = { pid: process.pid, ...options.base };
  const write = (level: LogLevel) =>
    logLevels.indexOf(level) < threshold
      ? () => {}
      : (fields: Record<string, unknown>, message: string) => {
          stream.write(pretty ? prettyLine(level, message, fields) : jsonLine(level, message, base, fields));
        };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

function isPlainObject(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A logger given to the gateway's API has the four methods it calls (`createLogger()`'s, pino's):
 * a TypeError naming `option` at the call, not at the first line logged (after a listener is up).
 *
 * @example
 * checkLogger(options.logger, 'serve: logger');
 */
export function checkLogger(logger: unknown, option: string): asserts logger is Logger {
  if (logger === null || typeof logger !== 'object') {
    throw new TypeError(`${option} is required: a logger with ${logLevels.join(', ')} methods, such as createLogger(), got ${logger === null ? 'null' : typeof logger}`);
  }
  assertLogger(logger, option);
}

function jsonLine(level: LogLevel, msg: string, base: Record<string, unknown>, fields: Record<string, unknown>): string {
  return `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }, errorReplacer)}\n`;
}

const colors: Record<LogLevel, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };

function prettyLine(level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const time = new Date().toISOString().slice(11, 23);
  const extra = Object.entries(fields)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value, errorReplacer)}`)
    .join(' ');
  return `${time} ${colors[level]}${level.toUpperCase().padEnd(5)}\x1b[0m ${msg}${extra === '' ? '' : ` \x1b[90m${extra}\x1b[0m`}\n`;
}

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { message: value.message, code: (value as NodeJS.ErrnoException).code } : value;
}

function nearestLevel(level: string): string {
  const nearest = nearestName(level, logLevels);
  return nearest === null ? `, got "${level}"` : `, got "${level}" (did you mean "${nearest}"?)`;
}
