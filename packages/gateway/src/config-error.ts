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
