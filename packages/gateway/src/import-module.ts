import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { externalCommonJs, forgetCommonJs, isNodeCommonJs } from './commonjs-files.js';
import { ConfigError } from './config-error.js';

/** A config module as imported: its namespace and the local files it was built from (itself first). */
export interface ImportedModule {
  readonly namespace: { default?: unknown };
  readonly files: readonly string[];
  /** Something to log at warn (once per process): the config was imported as is, its bundle unwritable. */
  readonly warning?: string;
}

/** The part of esbuild used here (an optional peer dependency: its types are not part of ours). */
interface Esbuild {
  build(options: object): Promise<{ outputFiles: Array<{ text: string }>; metafile: { inputs: Record<string, { format?: string }> } }>;
  transform(source: string, options: object): Promise<{ code: string }>;
}

interface BuildMessage {
  text: string;
  location: { file: string; line: number } | null;
}

interface Bundled {
  code: string;
  /** The local files bundled, absolute (the entry first, by its real path). */
  inputs: string[];
  /** Those Node loads as CommonJS itself. */
  commonJs: string[];
}

let generation = 0;
let warnedUnwritable = false;

/**
 * Imports a config module afresh. With esbuild installed, the module and the local ES module files it
 * imports (`./upstreams.ts`, `../shared.mjs`) are bundled into a new module on every load, so a
 * reload sees an edited imported file too and a `.ts` config may import `.ts` files on any Node;
 * packages stay imports, resolved from the (real) config's folder as Node does. Local CommonJS files
 * (`.cjs`, or `.js` written as CommonJS) and a CommonJS config are left for Node to load, their
 * require cache cleared before each load. The bundle is written beside the real config, under a
 * random name, and removed once imported; a folder that cannot be written (a read-only mount) gets
 * the config imported as is. Without esbuild, a `.js`/`.mjs`/`.cjs` is imported as is (each load a
 * new instance of that file; the ES modules it imports load once per process), and a `.ts` one
 * where Node can load TypeScript.
 *
 * @example
 * const { namespace, files } = await importModule('/etc/relay/gateway.config.ts', 'gateway.config.ts');
 */
export async function importModule(file: string, shown: string): Promise<ImportedModule> {
  generation++;
  const esbuild = await optionalEsbuild();
  if (esbuild === null) {
    forgetCommonJs([file, realpathOf(file)]);
    return { namespace: await importAsIs(file, shown), files: [file] };
  }
  const real = realpathOf(file);
  const built = await bundle(esbuild, real, shown);
  const files = [file, ...built.inputs.filter((input) => input !== file && input !== real)];
  forgetCommonJs(built.commonJs);
  if (built.commonJs.includes(real)) return { namespace: await importAsIs(real, shown), files };
  const written = await writeBundle(built.code, real, shown);
  if (written === null) return { namespace: await importAsIs(real, shown), files, warning: unwritableWarning() };
  return { namespace: await importBundle(written, shown), files };
}

async function optionalEsbuild(): Promise<Esbuild | null> {
  try {
    return (await import('esbuild')) as Esbuild;
  } catch {
    return null;
  }
}

/** The config's real path: Node resolves a module's imports (and its `import.meta.url`) from there, not from a symlink's folder. */
function realpathOf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

async function importAsIs(file: string, shown: string): Promise<{ default?: unknown }> {
  try {
    return (await import(`${pathToFileURL(file).href}?generation=${generation}`)) as { default?: unknown };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new ConfigError(shown, [{ path: '', message: 'a .ts config needs esbuild (or a TypeScript loader such as tsx); or write gateway.yaml' }]);
    }
    throw moduleError(shown, error);
  }
}

/**
 * Bundles the config: once to learn which local files are CommonJS (esbuild's metafile says), and again
 * with those left as imports when there are any (a CommonJS config itself is imported as is).
 */
async function bundle(esbuild: Esbuild, file: string, shown: string): Promise<Bundled> {
  const first = await build(esbuild, file, shown, []);
  const dir = dirname(file);
  const inputs = Object.entries(first.metafile.inputs).map(([input, meta]) => ({ path: isAbsolute(input) ? input : resolve(dir, input), format: meta.format }));
  const commonJs = inputs.filter((input) => isNodeCommonJs(input.path, input.format)).map((input) => input.path);
  const paths = [file, ...inputs.map((input) => input.path).filter((input) => input !== file)];
  if (commonJs.length === 0 || commonJs.includes(file)) return { code: first.outputFiles[0]!.text, inputs: paths, commonJs };
  const second = await build(esbuild, file, shown, [externalCommonJs(new Set(commonJs), generation)]);
  return { code: second.outputFiles[0]!.text, inputs: paths, commonJs };
}

async function build(esbuild: Esbuild, file: string, shown: string, plugins: object[]): ReturnType<Esbuild['build']> {
  try {
    return await esbuild.build({
      entryPoints: [file],
      absWorkingDir: dirname(file),
      bundle: true,
      packages: 'external',
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [...plugins, ownImportMeta(esbuild)],
    });
  } catch (error) {
    const first = ((error as { errors?: BuildMessage[] }).errors ?? [])[0];
    if (first === undefined) throw moduleError(shown, error);
    const where = first.location === null ? '' : `${first.location.file}:${first.location.line}: `;
    throw new ConfigError(shown, [{ path: '', message: `the module failed to load: ${where}${first.text}` }]);
  }
}

/**
 * Every bundled file keeps its own `import.meta.url` (and `dirname`, `filename`): a config reading
 * `new URL('./cert.pem', import.meta.url)` finds the file beside it, as it does imported unbundled.
 */
function ownImportMeta(esbuild: Esbuild): object {
  return {
    name: 'relay-own-import-meta',
    setup(build: { onLoad(options: { filter: RegExp }, load: (args: { path: string }) => Promise<object | undefined>): void }) {
      build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async ({ path }) => {
        const source = await readFile(path, 'utf8');
        if (!source.includes('import.meta')) return undefined;
        const define = {
          'import.meta.url': JSON.stringify(pathToFileURL(path).href),
          'import.meta.dirname': JSON.stringify(dirname(path)),
          'import.meta.filename': JSON.stringify(path),
        };
        const { code } = await esbuild.transform(source, { loader: loaderOf(path), sourcefile: path, define });
        return { contents: code, loader: 'js' };
      });
    },
  };
}

function loaderOf(path: string): string {
  const extension = extname(path).toLowerCase();
  if (extension === '.tsx' || extension === '.jsx') return extension.slice(1);
  return /^\.[cm]?ts$/.test(extension) ? 'ts' : 'js';
}

/**
 * Writes the bundle beside the (real) config, so its packages resolve as the config's do. The name has a
 * random part and the file is created exclusively: two gateways sharing the folder (each pid 1 in its
 * container) or two loads at once in one never write or remove each other's bundle. `null`: the folder
 * cannot be written (a read-only mount, such as a Kubernetes ConfigMap); a `.ts` config cannot do without.
 */
async function writeBundle(code: string, file: string, shown: string): Promise<string | null> {
  const bundled = resolve(dirname(file), `.${basename(file)}.${randomUUID()}.mjs`);
  try {
    await writeFile(bundled, code, { flag: 'wx' });
    return bundled;
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code ?? '';
    const unwritable = ['EACCES', 'EROFS', 'EPERM'].includes(errno);
    if (unwritable && !/\.[cm]?tsx?$/i.test(file)) return null;
    const hint = unwritable ? ': a .ts config needs a writable folder' : '';
    throw new ConfigError(shown, [{ path: '', message: `cannot write the bundled config beside it (${errno})${hint}` }]);
  }
}

function unwritableWarning(): string | undefined {
  if (warnedUnwritable) return undefined;
  warnedUnwritable = true;
  return "the config's folder cannot be written: the config is imported as is, without bundling; the local ES modules it imports load once per process (an edit to one needs a restart)";
}

/** Imports the bundle, then removes it (only this load's own file). */
async function importBundle(bundled: string, shown: string): Promise<{ default?: unknown }> {
  try {
    return (await import(pathToFileURL(bundled).href)) as { default?: unknown };
  } catch (error) {
    throw moduleError(shown, error);
  } finally {
    await rm(bundled, { force: true });
  }
}

function moduleError(shown: string, error: unknown): ConfigError {
  return new ConfigError(shown, [{ path: '', message: `the module failed to load: ${(error as Error).message}` }]);
}
