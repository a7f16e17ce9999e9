import { lstatSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileIdentity, realPathOf } from './file-identity.js';

/** Watches a config file and the local files it imports; `follow` replaces the imported ones after a reload. */
export interface ConfigWatcher {
  /** The files to watch besides the config (a module config's imports, `LoadedConfig.files`); the config itself may be among them. */
  follow(files: readonly string[]): void;
  close(): void;
}

/** Options of `watchConfig`. */
export interface WatchConfigOptions {
  /** The files the config imports (`LoadedConfig.files`), watched too. */
  files?: readonly string[];
  /**
   * The file's identity when it was read (`LoadedConfig.identity`): a save between the read and the
   * watcher's start (a gateway takes seconds to start) calls `onChange` once the watcher starts.
   * Default: the file as it is when the watcher starts.
   */
  seen?: string;
}

/**
 * Calls `onChange` once per burst of changes to `file` or to one of the `files` it imports (200 ms
 * debounce). Watches folders, not files: editors save by writing a new file and renaming it over
 * the old one. Besides the file's own folder it watches the folder of the file the path resolves
 * to (`/etc/relay/gateway.yaml -> /srv/config/gateway.yaml`: saving the real file reloads) and the
 * folder holding each symlinked folder on the way (`/srv/app/current -> releases/42`: swapping
 * `current` reloads); after each burst it resolves the path again and moves those watches.
 * A burst that does not name the file still counts when it changed what the path resolves to: a
 * Kubernetes ConfigMap mounts `gateway.yaml -> ..data/gateway.yaml` and updates by swapping the
 * `..data` symlink, so only `..data` shows up in the events.
 *
 * @example
 * const watcher = watchConfig('/etc/relay/gateway.yaml', () => void reload(), { seen: loaded.identity });
 */
export function watchConfig(file: string, onChange: () => void, options: WatchConfigOptions = {}): ConfigWatcher {
  const home = dirname(file);
  const name = basename(file);
  const folders = new Map<string, FSWatcher>();
  let followed: readonly string[] = options.files ?? [];
  let real = realPathOf(file);
  let named = new Set<string>();
  let seen = options.seen ?? fileIdentity(file);
  let touched = false;
  let timer: NodeJS.Timeout | null = null;
  const settled = () => {
    timer = null;
    const now = fileIdentity(file);
    const changed = touched || now !== seen;
    seen = now;
    touched = false;
    // A folder symlink swapped: the old target's folder is watched no longer, and a watch opened
    // through a symlinked folder still watches the folder it resolved to then.
    const nowReal = realPathOf(file);
    if (nowReal !== real) {
      real = nowReal;
      closeAll();
      follow(followed);
    }
    if (changed) onChange();
  };
  const burst = () => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(settled, 200);
    timer.unref();
  };
  const changedIn = (folder: string) => (_event: string, changed: string | null) => {
    if (changed === null || (folder === home && changed === name) || named.has(join(folder, changed))) touched = true;
    burst();
  };
  const follow = (next: readonly string[]) => {
    followed = next;
    // The real file is watched as an imported one is: by its folder and its name.
    named = new Set([...next, real].filter((path) => path !== file));
    const wanted = new Set([home, ...symlinkedFolderParents(file), ...[...named].map((path) => dirname(path))]);
    for (const [folder, watcher] of folders) {
      if (wanted.has(folder)) continue;
      watcher.close();
      folders.delete(folder);
    }
    for (const folder of wanted) if (!folders.has(folder)) watchFolder(folders, folder, changedIn(folder));
  };
  const closeAll = () => {
    for (const watcher of folders.values()) watcher.close();
    folders.clear();
  };
  // The config's own folder must be watchable; the others are watched when they can be.
  folders.set(home, openWatcher(folders, home, changedIn(home)));
  follow(followed);
  // Saved after it was read, before this watcher started: nothing will name it again.
  if (fileIdentity(file) !== seen) burst();
  return {
    follow,
    close() {
      closeAll();
      if (timer !== null) clearTimeout(timer);
    },
  };
}

function watchFolder(folders: Map<string, FSWatcher>, folder: string, listener: (event: string, changed: string | null) => void): void {
  try {
    folders.set(folder, openWatcher(folders, folder, listener));
  } catch {
    // A folder that just went away (an imported file's, an old release's) is not watched.
  }
}

function openWatcher(folders: Map<string, FSWatcher>, folder: string, listener: (event: string, changed: string | null) => void): FSWatcher {
  const watcher = watch(folder, listener);
  watcher.unref();
  // A watched folder removed (a ConfigMap's old version): without a listener the error would end the process.
  watcher.on('error', () => {
    watcher.close();
    if (folders.get(folder) === watcher) folders.delete(folder);
  });
  return watcher;
}

/**
 * The parent of each folder on the path that is a symlink: a Capistrano deploy swaps
 * `/srv/app/current -> releases/42`, and only `/srv/app` sees that.
 */
function symlinkedFolderParents(file: string): string[] {
  const parents: string[] = [];
  for (let folder = dirname(file); dirname(folder) !== folder; folder = dirname(folder)) {
    try {
      if (lstatSync(folder).isSymbolicLink()) parents.push(dirname(folder));
    } catch {
      // Missing on the way: nothing to watch there.
    }
  }
  return parents;
}
