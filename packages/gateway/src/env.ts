import { issueAt, type ConfigIssue, type LineOf, type ReferenceOf } from './config-error.js';

/** A path in the parsed document. */
export type DocumentPath = ReadonlyArray<string | number>;

/**
 * Which strings were quoted in the YAML source. A quoted whole reference stays a string (an API
 * key of digits is a string); its path goes to `kept` when its value reads as a number or boolean,
 * so a key that takes only those can still have it (`quotedScalars()`).
 */
export interface Quoting {
  readonly isQuoted: (path: DocumentPath) => boolean;
  readonly kept: DocumentPath[];
}

/** What the source document tells about its values: which were quoted, on which line each is. */
export interface SourceFacts {
  /** Absent for JSON, where every string is quoted and so none is kept as text. */
  readonly quoting?: Quoting;
  /** Where an unset variable's issue points. */
  readonly lineOf?: LineOf;
}

/** A config with its references replaced, and which values came from them. */
export interface Interpolated {
  readonly data: unknown;
  /**
   * The text a value was read from (`${API_KEY}`), for each string that had a reference: a config
   * error about it names that text instead of showing a value that may be a secret.
   */
  readonly referenceOf: ReferenceOf;
  /**
   * `message` with every value read from the environment replaced by the text it was read from:
   * for the checks that name values in their own words (`… is listed twice`, a listener's host).
   */
  readonly hideValues: (message: string) => string;
}

/** One interpolation: the environment, where issues go, what the source tells, which paths read the environment. */
interface Interpolation {
  readonly env: NodeJS.ProcessEnv;
  readonly issues: ConfigIssue[];
  readonly source: SourceFacts;
  readonly references: Map<string, string>;
  /** Each value a reference gave (whole string after replacing), with the text it was read from. */
  readonly values: Map<string, string>;
}

const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string of a parsed YAML or JSON config with
 * the environment's value (`$${` is a literal `${`). A string that is one reference and whose
 * value is a number or `true`/`false` becomes that number or boolean, so `port: ${PORT:-8080}`
 * is a port, unless `source.quoting` says it was quoted. An unset variable without a default is an
 * issue at its path (and line, from `source.lineOf`); one set to `""` reads as `""` (or the
 * default, as the shell's `:-` does).
 *
 * @example
 * const { data, referenceOf } = interpolateEnv({ upstream: '${AUTH_URL:-http://127.0.0.1:9001}' }, process.env, issues);
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, issues: ConfigIssue[], source: SourceFacts = {}): Interpolated {
  const references = new Map<string, string>();
  const values = new Map<string, string>();
  const data = interpolateValue(value, { env, issues, source, references, values }, []);
  return { data, referenceOf: (path) => references.get(referenceKey(path)), hideValues: (message) => hidden(message, values) };
}

/** Values shorter than this are not hidden: a port or a flag is no secret, and `80` would garble other numbers. */
const shortestHidden = 4;

function hidden(message: string, values: ReadonlyMap<string, string>): string {
  let text = message;
  // Longest first: a value that contains another is replaced whole.
  for (const [value, from] of [...values].sort((a, b) => b[0].length - a[0].length)) {
    if (value.length >= shortestHidden && text.includes(value)) text = text.split(value).join(from);
  }
  return text;
}

function referenceKey(path: DocumentPath): string {
  return JSON.stringify(path);
}

function interpolateValue(value: unknown, run: Interpolation, path: Array<string | number>): unknown {
  if (typeof value === 'string') return interpolateString(value, run, path);
  if (Array.isArray(value)) return value.map((item, index) => interpolateValue(item, run, [...path, index]));
  if (value !== null && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) result[key] = interpolateValue(item, run, [...path, key]);
    return result;
  }
  return value;
}

function interpolateString(text: string, run: Interpolation, path: Array<string | number>): unknown {
  if (!text.includes('${')) return text;
  let read = false;
  const replaced = text.replace(reference, (match: string, name: string | undefined, fallback: string | undefined) => {
    if (name === undefined) return '${';
    read = true;
    const found = run.env[name];
    // As in the shell: `:-` also replaces an empty value, but a variable set to "" is set.
    if (found !== undefined && (found !== '' || fallback === undefined)) return found;
    if (fallback !== undefined) return fallback;
    run.issues.push(issueAt(path, `environment variable ${name} is not set (write \${${name}:-default} for a default)`, run.source.lineOf));
    return match;
  });
  if (read) {
    run.references.set(referenceKey(path), text);
    run.values.set(replaced, text);
  }
  if (!whole.test(text)) return replaced;
  const typed = typedValue(replaced);
  const { quoting } = run.source;
  if (typed === replaced || quoting === undefined || !quoting.isQuoted(path)) return typed;
  quoting.kept.push(path);
  return replaced;
}

/**
 * `true`/`false` as booleans, decimal numbers as numbers, anything else as it is.
 *
 * @example
 * typedValue('8080'); // 8080
 */
export function typedValue(text: string): unknown {
  if (text === 'true' || text === 'false') return text === 'true';
  return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
}
