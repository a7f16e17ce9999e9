import { realpathSync, statSync } from 'node:fs';

/**
 * The file a path resolves to (through symlinks), its mtime and size; `''` while it is missing.
 * Two equal identities mean nothing a reload would see has changed: `loadConfig` records it before
 * reading, and the config watcher compares with it.
 *
 * @example
 * if (fileIdentity(file) !== loaded.identity) void reload();
 */
export function fileIdentity(file: string): string {
  try {
    const real = realpathSync(file);
    const stats = statSync(real);
    return `${real}\u0000${stats.mtimeMs}\u0000${stats.size}`;
  } catch {
    return '';
  }
}

/**
 * The path with every symlink resolved, or the path itself while it cannot be resolved (missing).
 *
 * @example
 * realPathOf('/etc/relay/gateway.yaml'); // '/srv/config/gateway.yaml'
 */
export function realPathOf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
