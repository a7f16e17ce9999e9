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

/**
 * An issue at a document path, with the path's line when `lineOf` knows it: every problem found
 * after the schema (an unset variable, a factory's refusal, a TLS file) names its line as the
 * schema's own issues do.
 *
 * @example
 * issueAt(['routes', 0, 'upstream'], 'targetBaseUrl must not contain credentials', loaded.lineOf);
 */
export function issueAt(path: ReadonlyArray<string | number>, message: string, lineOf?: LineOf): ConfigIssue {
  const line = lineOf?.(path);
  return line === undefined ? { path: formatPath(path), message } : { path: formatPath(path), message, line };
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
