import { realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Calls `onChange` once per burst of changes to `file` (200 ms debounce). Watches the folder, not
 * the file: editors save by writing a new file and renaming it over the old one. A burst that does
 * not name the file still counts when it changed what the path resolves to: a Kubernetes ConfigMap
 * mounts `gateway.yaml -> ..data/gateway.yaml` and updates by swapping the `..data` symlink, so
 * only `..data` shows up in the events.
 *
 * @example
 * const watcher = watchConfig('/etc/relay/gateway.yaml', () => void reload());
 */
export function watchConfig(file: string, onChange: () => void): FSWatcher {
  const name = basename(file);
  let seen = resolvedIdentity(file);
  let named = false;
  let timer: NodeJS.Timeout | null = null;
  const settled = () => {
    timer = null;
    const now = resolvedIdentity(file);
    const changed = named || now !== seen;
    seen = now;
    named = false;
    if (changed) onChange();
  };
  const watcher = watch(dirname(file), (_event, changed) => {
    if (changed === null || changed === name) named = true;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(settled, 200);
    timer.unref();
  });
  watcher.unref();
  return watcher;
}

/** The file the path resolves to (through symlinks), its mtime and size; `''` while it is missing. */
function resolvedIdentity(file: string): string {
  try {
    const real = realpathSync(file);
    const stats = statSync(real);
    return `${real}\u0000${stats.mtimeMs}\u0000${stats.size}`;
  } catch {
    return '';
  }
}
