import type { Logger } from '@relay/core';
import { nearestName } from '@relay/core/transport';
import { checkApiOptions } from './api-options.js';

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
