import { z } from 'zod';
import { ConfigError, formatPath, nearestLine, type ConfigIssue, type LineOf, type ReferenceOf } from './config-error.js';
import { nearestWord } from './nearest.js';
import { gatewayConfigSchema, type ResolvedConfig } from './schema.js';
import { schemasAt } from './schema-at.js';

/** What the source document tells about the data: lines, and which values came from the environment. */
interface DataSource {
  readonly data: unknown;
  readonly lineOf: LineOf;
  readonly referenceOf: ReferenceOf;
  readonly hideValues: (message: string) => string;
}

/** Where the parsed data came from: its lines in the file, and the values read from the environment. */
export interface ConfigSource {
  /** The line of a document path (YAML and JSON files). */
  readonly lineOf?: LineOf;
  /** The `${VAR}` reference a value at a path was read from. */
  readonly referenceOf?: ReferenceOf;
  /** A message with the values read from the environment replaced by their references. */
  readonly hideValues?: (message: string) => string;
}

const noLine: LineOf = () => undefined;
const noReference: ReferenceOf = () => undefined;
const asIs = (message: string): string => message;

/**
 * Validates parsed config data against the schema: every issue with its document path, what was
 * expected and, for an unknown key, the nearest valid one. A value read from the environment
 * (`referenceOf` names its reference) is not shown in a message, only where it came from: it may
 * be a secret. Throws a `ConfigError`.
 *
 * @example
 * const config = validateConfig(JSON.parse(text), 'gateway.json');
 */
export function validateConfig(data: unknown, file: string, source: ConfigSource = {}): ResolvedConfig {
  const lineOf = source.lineOf ?? noLine;
  const referenceOf = source.referenceOf ?? noReference;
  const hideValues = source.hideValues ?? asIs;
  const result = gatewayConfigSchema.safeParse(data);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue) => describeIssue(issue, { data, lineOf, referenceOf, hideValues }));
  throw new ConfigError(file, dedupe(issues).sort(byLine));
}

function describeIssue(issue: z.ZodIssue, source: DataSource): ConfigIssue[] {
  const { data, lineOf } = source;
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const valid = keysAt(issue.path);
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: unknownKeyMessage(key, valid),
      line: lineOf(issue.path, key),
    }));
  }
  if (issue.code === z.ZodIssueCode.invalid_union) {
    const branch = closestBranch(issue, data);
    if (branch !== null) return branch.flatMap((inner) => describeIssue(inner, source));
    const unknown = unknownInEveryBranch(issue);
    if (unknown.length > 0) {
      const valid = keysAt(issue.path);
      return unknown.map((key) => ({ path: formatPath([...issue.path, key]), message: unknownKeyMessage(key, valid), line: lineOf(issue.path, key) }));
    }
  }
  // A config-wide check names values in its own words (a target listed twice, a listener's host): none read from the environment.
  return [{ path: formatPath(issue.path), message: source.hideValues(message(issue, source)), line: nearestLine(issue.path, lineOf) }];
}

function message(issue: z.ZodIssue, source: DataSource): string {
  const value = got(source, issue.path);
  // A refinement's own message ends with the value it got (`…, got "x"`): not one read from the environment.
  if (issue.code === z.ZodIssueCode.custom && source.referenceOf(issue.path) !== undefined) return issue.message.replace(/, got .*$/s, `, got ${value}`);
  return expectation(issue, value);
}

/**
 * The value at a path as a message shows it after "got": for one read from the environment, its
 * type and the reference it came from (`a number from ${API_KEY}`), never the value.
 */
function got(source: DataSource, path: ReadonlyArray<string | number>): string {
  const value = valueAt(source.data, path);
  const reference = source.referenceOf(path);
  if (reference === undefined) return shown(value);
  const from = /^\$\{[^}]*\}$/.test(reference) ? reference : shown(reference);
  return `${typeof value === 'number' ? 'a number' : typeof value === 'boolean' ? 'a boolean' : 'a string'} from ${from}`;
}

/**
 * What a union without a message of its own takes (`true` or options, a string or a list …), from
 * the type each branch expected at the union's own path: zod's default says only "Invalid input".
 */
function unionExpectation(issue: z.ZodInvalidUnionIssue, value: string): string {
  // A union with an errorMap of its own (`upstream`, `trustProxy` …) already says what it takes.
  if (issue.message !== undefined && issue.message !== 'Invalid input') return issue.message;
  const keys = keysAt(issue.path);
  const branches = [...new Set(branchExpectations(issue, keys))];
  if (branches.length === 0) return `expected another type, got ${value}`;
  const list = branches.length === 1 ? branches[0]! : `${branches.slice(0, -1).join(', ')} or ${branches.at(-1)!}`;
  return `expected ${list}, got ${value}`;
}

function branchExpectations(issue: z.ZodInvalidUnionIssue, keys: string[]): string[] {
  return issue.unionErrors.flatMap((error) =>
    error.issues
      .filter((inner) => inner.path.length === issue.path.length)
      .flatMap((inner) => (inner.code === z.ZodIssueCode.invalid_union ? branchExpectations(inner, keys) : branchExpectation(inner, keys))),
  );
}

function branchExpectation(issue: z.ZodIssue, keys: string[]): string[] {
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.expected === 'object' && keys.length > 0) return [`{ ${keys.join(', ')} }`];
      return [issue.expected === 'array' ? 'a list' : article(issue.expected)];
    case z.ZodIssueCode.invalid_literal:
      return [JSON.stringify(issue.expected)];
    case z.ZodIssueCode.invalid_enum_value:
      return issue.options.map((option) => JSON.stringify(option));
    default:
      return [];
  }
}

function unknownKeyMessage(key: string, valid: string[]): string {
  const nearest = nearestWord(key, valid);
  if (nearest !== undefined) return `unknown key "${key}" (did you mean "${nearest}"?)`;
  return `unknown key "${key}" (expected one of ${valid.join(', ')})`;
}

/**
 * The branch of a union the value was meant for: the only one that did not fail on its type (or,
 * for `false`, its literal value) alone. `health: { pth: /h }` is meant for `{ path, listeners }`.
 */
function closestBranch(issue: z.ZodInvalidUnionIssue, data: unknown): z.ZodIssue[] | null {
  const value = valueAt(data, issue.path);
  if (value === undefined) return null;
  const meant = meantBranches(issue);
  return meant.length === 1 ? meant[0]! : null;
}

function meantBranches(issue: z.ZodInvalidUnionIssue): z.ZodIssue[][] {
  return issue.unionErrors
    .map((error) => error.issues)
    .filter((issues) => !issues.every((inner) => (inner.code === z.ZodIssueCode.invalid_type || inner.code === z.ZodIssueCode.invalid_literal) && inner.path.length === issue.path.length));
}

/**
 * The keys of an object that every object branch of a union refused (`key: { heder: x }` against
 * `{ header }` and `{ cookie }`): each is an unknown key of the union as a whole.
 */
function unknownInEveryBranch(issue: z.ZodInvalidUnionIssue): string[] {
  const refused = meantBranches(issue).map((issues) =>
    issues.flatMap((inner) => (inner.code === z.ZodIssueCode.unrecognized_keys && inner.path.length === issue.path.length ? inner.keys : [])),
  );
  if (refused.length === 0) return [];
  return refused[0]!.filter((key) => refused.every((keys) => keys.includes(key)));
}

/** What was expected at an issue's path, and what was there (`got`, as `got()` shows it). */
function expectation(issue: z.ZodIssue, value: string): string {
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.received === 'undefined') return `required: expected ${article(issue.expected)}`;
      if (issue.message.startsWith('Expected ')) return `expected ${article(issue.expected)}, got ${value}`;
      return `${issue.message}, got ${value}`;
    case z.ZodIssueCode.invalid_literal:
      return `expected ${JSON.stringify(issue.expected)}, got ${value}`;
    case z.ZodIssueCode.invalid_enum_value:
      return `expected one of ${issue.options.join(', ')}, got ${value}`;
    case z.ZodIssueCode.invalid_union:
      return unionExpectation(issue, value);
    case z.ZodIssueCode.too_small:
    case z.ZodIssueCode.too_big:
      return `${issue.message.startsWith('expected') ? issue.message : lowerFirst(issue.message)}, got ${value}`;
    default:
      return issue.message;
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function lowerFirst(text: string): string {
  return text[0]!.toLowerCase() + text.slice(1);
}

function shown(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value !== null && typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function valueAt(data: unknown, path: ReadonlyArray<string | number>): unknown {
  let value = data;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[part];
  }
  return value;
}

/**
 * The valid keys of the object schema at a document path, through unions (every branch is tried:
 * `rateLimit` is an object or a list of them; a key is `{ header }` or `{ cookie }`, whose keys are
 * both valid there).
 */
function keysAt(path: ReadonlyArray<string | number>): string[] {
  const objects = schemasAt(gatewayConfigSchema, path).filter((schema): schema is z.AnyZodObject => schema instanceof z.ZodObject);
  return [...new Set(objects.flatMap((schema) => Object.keys(schema.shape as object)))];
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\n${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function byLine(a: ConfigIssue, b: ConfigIssue): number {
  return (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER);
}
