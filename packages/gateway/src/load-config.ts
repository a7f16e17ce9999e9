import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { isAlias, isCollection, isMap, isScalar, LineCounter, parseDocument, Scalar, type Document } from 'yaml';
import { ConfigError, type ConfigIssue, type LineOf } from './config-error.js';
import { interpolateEnv, type Quoting } from './env.js';
import { fileIdentity } from './file-identity.js';
import { importModule } from './import-module.js';
import { quotedScalars } from './quoted-scalars.js';
import type { ResolvedConfig } from './schema.js';
import { validateConfig } from './validate.js';

/** A validated config and where it came from. */
export interface LoadedConfig {
  /** The config with defaults filled in. */
  readonly config: ResolvedConfig;
  /** The absolute path of the file. */
  readonly file: string;
  /** Its folder: relative file paths in the config (TLS certificates, CAs) are read from here. */
  readonly dir: string;
  /** The path as given, for messages. */
  readonly shown: string;
  /** The file's text (YAML, JSON): what a worker the primary starts later is given; `null` for a module. */
  readonly text: string | null;
  /**
   * The line of a document path in the file (YAML, JSON; absent for a module): problems found after
   * the schema (a stage factory's refusal, a TLS file) name their line as the schema's issues do.
   */
  readonly lineOf?: LineOf;
  /** A module config's local files (itself first, then the files it imports, when bundled with esbuild): what `serve` watches. */
  readonly files?: readonly string[];
  /**
   * The file as it was just before it was read (`fileIdentity`: real path, mtime, size); absent when
   * the text came from `source`. The config watcher starts from it, so a save during startup is seen.
   */
  readonly identity?: string;
  /** Something the caller should log at warn (a module config imported as is, its folder read-only); given once per process. */
  readonly warning?: string;
}

const moduleExtensions = new Set(['.ts', '.mts', '.js', '.mjs', '.cjs']);

/**
 * Reads and validates a config file: YAML (`.yaml`/`.yml`), JSON, or a module (`.ts`, `.mts`,
 * `.js`, `.mjs`, `.cjs`) whose default export is the config (or a function returning it). `${NAME:-default}`
 * in YAML and JSON strings reads the environment. Throws a `ConfigError` naming the file, the
 * path in the document and what was expected.
 *
 * @example
 * const { config } = await loadConfig('gateway.yaml');
 */
export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env, source?: string): Promise<LoadedConfig> {
  const file = resolve(path);
  const shown = path;
  const extension = extname(file).toLowerCase();
  // Taken before reading: a save that lands while (or after) the file is read differs from it.
  const identity = source === undefined ? fileIdentity(file) : undefined;
  if (moduleExtensions.has(extension)) {
    const { data, files, warning } = await importConfig(file, shown);
    return { config: validateConfig(data, shown), file, dir: dirname(file), shown, text: null, files, ...(identity === undefined ? {} : { identity }), ...(warning === undefined ? {} : { warning }) };
  }
  if (extension !== '.yaml' && extension !== '.yml' && extension !== '.json') {
    throw new ConfigError(shown, [{ path: '', message: 'expected a .yaml, .yml, .json, .ts, .mts, .js, .mjs or .cjs file' }]);
  }
  // `source`: the text the primary validated, for a worker it starts after the file changed.
  const text = source ?? (await readText(file, shown));
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (document.errors.length > 0) {
    throw new ConfigError(
      shown,
      document.errors.map((error) => ({ path: '', message: error.message.split('\n')[0]!, line: lines.linePos(error.pos[0]).line })),
    );
  }
  const issues: ConfigIssue[] = [];
  const lineOf = lineFinder(document, lines);
  // JSON has no unquoted strings: there every whole reference may become a number or boolean.
  const quoting = extension === '.json' ? undefined : quotingOf(document);
  const { data, referenceOf, hideValues } = interpolateEnv(document.toJS(), env, issues, { quoting, lineOf });
  if (issues.length > 0) throw new ConfigError(shown, issues);
  if (quoting !== undefined) quotedScalars(data, quoting.kept);
  return { config: validateConfig(data, shown, { lineOf, referenceOf, hideValues }), file, dir: dirname(file), shown, text, lineOf, ...(identity === undefined ? {} : { identity }) };
}

async function readText(file: string, shown: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(shown, [{ path: '', message: code === 'ENOENT' ? 'no such file' : `cannot read it (${code})` }]);
  }
}

/** Which scalars of a YAML document were quoted (`key: "${KEY}"`, not `port: ${PORT}`). */
function quotingOf(document: Document): Quoting {
  return {
    isQuoted(path) {
      const node = nodeThroughAliases(document, path);
      return isScalar(node) && node.type !== Scalar.PLAIN;
    },
    kept: [],
  };
}

/**
 * The node at `path`, following aliases on the way (`headers: *tenant` reuses the anchored block,
 * quoting included), where `document.getIn` stops at the alias.
 */
function nodeThroughAliases(document: Document, path: readonly unknown[]): unknown {
  let node: unknown = document.contents;
  for (const key of path) {
    if (isAlias(node)) node = node.resolve(document);
    if (!isCollection(node)) return undefined;
    node = node.get(key, true);
  }
  return isAlias(node) ? node.resolve(document) : node;
}

/** Line numbers of document paths in a parsed YAML (or JSON) document. */
function lineFinder(document: Document, lines: LineCounter): LineOf {
  return (path, key) => {
    const node = document.getIn(path, true);
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && item.key.value === key);
      const range = isScalar(pair?.key) ? pair.key.range : undefined;
      if (range) return lines.linePos(range[0]).line;
    }
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    return range === undefined ? undefined : lines.linePos(range[0]).line;
  };
}

/** A config module's default export (called, when a function) and the local files it is built from. */
async function importConfig(file: string, shown: string): Promise<{ data: unknown; files: readonly string[]; warning?: string }> {
  const { namespace, files, warning } = await importModule(file, shown);
  const exported = namespace.default;
  if (exported === undefined) throw new ConfigError(shown, [{ path: '', message: 'expected a default export: export default defineConfig({ ... })' }]);
  return { data: typeof exported === 'function' ? await (exported as () => unknown)() : exported, files, warning };
}
