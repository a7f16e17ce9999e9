import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Calls `onChange` once per burst of changes to `file` (200 ms debounce). Watches the folder, not
 * the file: editors save by writing a new file and renaming it over the old one.
 *
 * @example
 * const watcher = watchConfig('/etc/relay/gateway.yaml', () => void reload());
 */
export function watchConfig(file: string, onChange: () => void): FSWatcher {
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  const watcher = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, 200);
    timer.unref();
  });
  watcher.unref();
  return watcher;
}
