import type { Logger } from './types.js';

function ignore(): void {}

/** A logger that drops everything: the default when `createRelay` gets none. */
export const silentLogger: Logger = Object.freeze({ debug: ignore, info: ignore, warn: ignore, error: ignore });
