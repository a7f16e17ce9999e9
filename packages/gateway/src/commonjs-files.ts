import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Whether Node loads this local file as CommonJS itself (a `.cjs`, or a `.js` esbuild found written as
 * CommonJS): such a file stays out of the bundle, since a bundled `require('node:path')` in an ESM
 * bundle throws `Dynamic require of "node:path" is not supported`, and `__dirname` would name the bundle's folder.
 *
 * @example
 * isNodeCommonJs('/etc/relay/upstreams.cjs', undefined); // true
 */
export function isNodeCommonJs(file: string, format: string | undefined): boolean {
  const extension = extname(file).toLowerCase();
  return extension === '.cjs' || (extension === '.js' && format === 'cjs');
}

/**
 * Forgets these files in Node's CommonJS cache (one for the whole process, keyed by filename): the next
 * `require` or `import` of them reads them again, so a reload sees an edited `.cjs` config or helper.
 *
 * @example
 * forgetCommonJs(['/etc/relay/gateway.config.cjs']);
 */
export function forgetCommonJs(files: readonly string[]): void {
  if (files.length === 0) return;
  const cache = createRequire(files[0]!).cache;
  for (const file of files) delete cache[file];
}

interface ResolveArgs {
  path: string;
  kind: string;
  importer: string;
  resolveDir: string;
  pluginData?: unknown;
}

interface PluginBuild {
  onResolve(options: { filter: RegExp }, resolve: (args: ResolveArgs) => Promise<object | undefined>): void;
  resolve(path: string, options: object): Promise<{ path: string; errors: unknown[] }>;
}

const inner = Symbol('relay-commonjs-resolve');

/**
 * An esbuild plugin that leaves these local CommonJS files as imports of their own file URL (with a
 * query, so each load is a new ESM instance; their require cache is cleared by `forgetCommonJs`), for Node to load.
 *
 * @example
 * plugins: [externalCommonJs(new Set(['/etc/relay/upstreams.cjs']), 3)]
 */
export function externalCommonJs(files: ReadonlySet<string>, generation: number): object {
  return {
    name: 'relay-external-commonjs',
    setup(build: PluginBuild) {
      build.onResolve({ filter: /^\.{0,2}\// }, async (args) => {
        if (args.pluginData === inner) return undefined;
        const found = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: inner });
        if (found.errors.length > 0 || !files.has(found.path)) return undefined;
        return { path: `${pathToFileURL(found.path).href}?generation=${generation}`, external: true };
      });
    },
  };
}
