import { realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Watches a config file and the local files it imports; `follow` replaces the imported ones after a reload. */
export interface ConfigWatcher {
  /** The files to watch besides the config (a module config's imports, `LoadedConfig.files`); the config itself may be among them. */
  follow(files: readonly string[]): void;
  close(): void;
}

/**
 * Calls `onChange` once per burst of changes to `file` or to one of the `files` it imports (200 ms
 * debounce). Watches folders, not files: editors save by writing a new file and renaming it over
 * the old one. A burst that does not name the file still counts when it changed what the path
 * resolves to: a Kubernetes ConfigMap mounts `gateway.yaml -> ..data/gateway.yaml` and updates by
 * swapping the `..data` symlink, so only `..data` shows up in the events.
 *
 * @example
 * const watcher = watchConfig('/etc/relay/gateway.yaml', () => void reload());
 */
export function watchConfig(file: string, onChange: () => void, files: readonly string[] = []): ConfigWatcher {
  const home = dirname(file);
  const name = basename(file);
  const folders = new Map<string, FSWatcher>();
  let imported = new Set<string>();
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
  const changedIn = (folder: string) => (_event: string, changed: string | null) => {
    if (changed === null || (folder === home && changed === name) || imported.has(join(folder, changed))) named = true;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(settled, 200);
    timer.unref();
  };
  const follow = (next: readonly string[]) => {
    imported = new Set(next.filter((path) => path !== file));
    const wanted = new Set([home, ...[...imported].map((path) => dirname(path))]);
    for (const [folder, watcher] of folders) {
      if (wanted.has(folder)) continue;
      watcher.close();
      folders.delete(folder);
    }
    for (const folder of wanted) if (!folders.has(folder)) watchFolder(folders, folder, changedIn(folder), folder === home);
  };
  follow(files);
  return {
    follow,
    close() {
      for (const watcher of folders.values()) watcher.close();
      folders.clear();
      if (timer !== null) clearTimeout(timer);
    },
  };
}

function watchFolder(folders: Map<string, FSWatcher>, folder: string, listener: (event: string, changed: string | null) => void, required: boolean): void {
  try {
    const watcher = watch(folder, listener);
    watcher.unref();
    folders.set(folder, watcher);
  } catch (error) {
    // The config's own folder must be watchable; an imported file's folder that just went away is not watched.
    if (required) throw error;
  }
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
