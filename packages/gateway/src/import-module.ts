import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from './config-error.js';

/** A config module as imported: its namespace and the local files it was built from (itself first). */
export interface ImportedModule {
  readonly namespace: { default?: unknown };
  readonly files: readonly string[];
}

/** The part of esbuild used here (an optional peer dependency: its types are not part of ours). */
interface Esbuild {
  build(options: object): Promise<{ outputFiles: Array<{ text: string }>; metafile: { inputs: Record<string, unknown> } }>;
  transform(source: string, options: object): Promise<{ code: string }>;
}

interface BuildMessage {
  text: string;
  location: { file: string; line: number } | null;
}

let generation = 0;

/**
 * Imports a config module afresh. With esbuild installed, the module and the local files it
 * imports (`./upstreams.ts`, `../shared.mjs`) are bundled into a new module on every load, so a
 * reload sees an edited imported file too and a `.ts` config may import `.ts` files on any Node;
 * packages stay imports, resolved from the config's folder as usual. The bundle is written beside the
 * config (so those packages resolve) and removed once imported. Without esbuild, a `.js`/`.mjs` is
 * imported as is (a query makes each load a new instance of that file; the files it imports load
 * once per process), and a `.ts` one where Node can load TypeScript.
 *
 * @example
 * const { namespace, files } = await importModule('/etc/relay/gateway.config.ts', 'gateway.config.ts');
 */
export async function importModule(file: string, shown: string): Promise<ImportedModule> {
  generation++;
  const esbuild = extname(file).toLowerCase() === '.cjs' ? null : await optionalEsbuild();
  if (esbuild === null) return { namespace: await importAsIs(file, shown), files: [file] };
  const { code, files } = await bundle(esbuild, file, shown);
  return { namespace: await importBundle(code, file, files, shown), files };
}

async function optionalEsbuild(): Promise<Esbuild | null> {
  try {
    return (await import('esbuild')) as Esbuild;
  } catch {
    return null;
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

async function bundle(esbuild: Esbuild, file: string, shown: string): Promise<{ code: string; files: string[] }> {
  const dir = dirname(file);
  try {
    const result = await esbuild.build({
      entryPoints: [file],
      absWorkingDir: dir,
      bundle: true,
      packages: 'external',
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [ownImportMeta(esbuild)],
    });
    const inputs = Object.keys(result.metafile.inputs).map((input) => (isAbsolute(input) ? input : resolve(dir, input)));
    return { code: result.outputFiles[0]!.text, files: [file, ...inputs.filter((input) => input !== file)] };
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
 * Imports the bundle from a file beside the config, removed once imported. A folder that cannot be
 * written (a read-only mount) still serves a `.js`/`.mjs` config that imports no local file, as is.
 */
async function importBundle(code: string, file: string, files: readonly string[], shown: string): Promise<{ default?: unknown }> {
  const bundled = resolve(dirname(file), `.${basename(file)}.${process.pid}.${generation}.mjs`);
  try {
    await writeFile(bundled, code);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (files.length === 1 && !/\.[cm]?tsx?$/i.test(file)) return importAsIs(file, shown);
    throw new ConfigError(shown, [{ path: '', message: `cannot write the bundled config beside it (${code}): a .ts config, or one importing local files, needs a writable folder` }]);
  }
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
