/** One problem found in a config file. */
export interface ConfigIssue {
  /** Where in the document: `routes[2].upstream`; `''` for the document itself. */
  readonly path: string;
  /** What was expected, e.g. `expected an absolute http:// or https:// URL, got "ftp://x"`. */
  readonly message: string;
  /** 1-based line in the file, when the format tells (YAML and JSON do). */
  readonly line?: number;
}

/**
 * A config that cannot be used: the file, and each issue with its path in the document. Its message
 * is one line per issue, `gateway.yaml:12: routes[2].upstream: expected …`; the CLI prints it and
 * exits with code 2.
 *
 * @example
 * try { await loadConfig('gateway.yaml'); } catch (error) { if (error instanceof ConfigError) console.error(error.message); }
 */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => formatIssue(file, issue)).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** Finds the line of a path in the source document, when the format can tell (YAML and JSON do; a module does not). */
export type LineOf = (path: ReadonlyArray<string | number>, key?: string) => number | undefined;

/** The text a value at a document path was read from when it came from the environment (`${API_KEY}`), else `undefined`. */
export type ReferenceOf = (path: ReadonlyArray<string | number>) => string | undefined;

/**
 * An issue at a document path, with the line of the path or of its nearest parent in the file when
 * `lineOf` knows it: every problem found after the schema (an unset variable, a factory's refusal,
 * a TLS file) names its line as the schema's own issues do, also at a key the file leaves out.
 *
 * @example
 * issueAt(['routes', 0, 'upstream'], 'targetBaseUrl must not contain credentials', loaded.lineOf);
 */
export function issueAt(path: ReadonlyArray<string | number>, message: string, lineOf?: LineOf): ConfigIssue {
  const line = lineOf === undefined ? undefined : nearestLine(path, lineOf);
  return line === undefined ? { path: formatPath(path), message } : { path: formatPath(path), message, line };
}

/**
 * The line of `path`, or of its nearest parent in the file, the document itself included: a
 * required key left out has no line of its own, and the object it is missing from is where to
 * add it (docs/gateway.md: every problem names the file, the line and the path).
 *
 * @example
 * nearestLine(['routes'], lineOf); // 1, the document's first line, when the file has no routes
 */
export function nearestLine(path: ReadonlyArray<string | number>, lineOf: LineOf): number | undefined {
  for (let length = path.length; length >= 0; length--) {
    const line = lineOf(path.slice(0, length));
    if (line !== undefined) return line;
  }
  return undefined;
}

/**
 * A document path as the messages write it.
 *
 * @example
 * formatPath(['routes', 2, 'upstream']); // 'routes[2].upstream'
 */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? part : `.${part}`;
  }
  return text;
}
