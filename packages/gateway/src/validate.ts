import { z } from 'zod';
import { ConfigError, formatPath, type ConfigIssue, type LineOf } from './config-error.js';
import { nearestWord } from './nearest.js';
import { gatewayConfigSchema, type ResolvedConfig } from './schema.js';

/**
 * Validates parsed config data against the schema: every issue with its document path, what was
 * expected and, for an unknown key, the nearest valid one. Throws a `ConfigError`.
 *
 * @example
 * const config = validateConfig(JSON.parse(text), 'gateway.json');
 */
export function validateConfig(data: unknown, file: string, lineOf: LineOf = () => undefined): ResolvedConfig {
  const result = gatewayConfigSchema.safeParse(data);
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue) => describeIssue(issue, data, lineOf));
  throw new ConfigError(file, dedupe(issues).sort(byLine));
}

function describeIssue(issue: z.ZodIssue, data: unknown, lineOf: LineOf): ConfigIssue[] {
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const valid = keysAt(gatewayConfigSchema, issue.path);
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: unknownKeyMessage(key, valid),
      line: lineOf(issue.path, key),
    }));
  }
  if (issue.code === z.ZodIssueCode.invalid_union) {
    const branch = closestBranch(issue, data);
    if (branch !== null) return branch.flatMap((inner) => describeIssue(inner, data, lineOf));
    const unknown = unknownInEveryBranch(issue);
    if (unknown.length > 0) {
      const valid = keysAt(gatewayConfigSchema, issue.path);
      return unknown.map((key) => ({ path: formatPath([...issue.path, key]), message: unknownKeyMessage(key, valid), line: lineOf(issue.path, key) }));
    }
  }
  return [{ path: formatPath(issue.path), message: expectation(issue, valueAt(data, issue.path)), line: nearestLine(issue.path, lineOf) }];
}

/**
 * The line of `path`, or of its nearest parent in the file: a required key left out has no line of
 * its own, and the object it is missing from is where to add it (docs/gateway.md: every problem
 * names the file, the line and the path).
 */
function nearestLine(path: ReadonlyArray<string | number>, lineOf: LineOf): number | undefined {
  for (let length = path.length; length > 0; length--) {
    const line = lineOf(path.slice(0, length));
    if (line !== undefined) return line;
  }
  return undefined;
}

/**
 * What a union without a message of its own takes (`true` or options, a string or a list …), from
 * the type each branch expected at the union's own path: zod's default says only "Invalid input".
 */
function unionExpectation(issue: z.ZodInvalidUnionIssue, value: unknown): string {
  // A union with an errorMap of its own (`upstream`, `trustProxy` …) already says what it takes.
  if (issue.message !== undefined && issue.message !== 'Invalid input') return issue.message;
  const keys = keysAt(gatewayConfigSchema, issue.path);
  const branches = [...new Set(branchExpectations(issue, keys))];
  if (branches.length === 0) return `expected another type, got ${shown(value)}`;
  const list = branches.length === 1 ? branches[0]! : `${branches.slice(0, -1).join(', ')} or ${branches.at(-1)!}`;
  return `expected ${list}, got ${shown(value)}`;
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

function expectation(issue: z.ZodIssue, value: unknown): string {
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.received === 'undefined') return `required: expected ${article(issue.expected)}`;
      if (issue.message.startsWith('Expected ')) return `expected ${article(issue.expected)}, got ${shown(value)}`;
      return `${issue.message}, got ${shown(value)}`;
    case z.ZodIssueCode.invalid_literal:
      return `expected ${JSON.stringify(issue.expected)}, got ${shown(value)}`;
    case z.ZodIssueCode.invalid_enum_value:
      return `expected one of ${issue.options.join(', ')}, got ${shown(value)}`;
    case z.ZodIssueCode.invalid_union:
      return unionExpectation(issue, value);
    case z.ZodIssueCode.too_small:
    case z.ZodIssueCode.too_big:
      return `${issue.message.startsWith('expected') ? issue.message : lowerFirst(issue.message)}, got ${shown(value)}`;
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
 * The valid keys of the object schema at a document path, through defaults, optionals, arrays,
 * records and unions (every branch is tried: `rateLimit` is an object or a list of them; a key
 * is `{ header }` or `{ cookie }`, whose keys are both valid there).
 */
function keysAt(schema: z.ZodTypeAny, path: ReadonlyArray<string | number>): string[] {
  const current = unwrapped(schema);
  if (current instanceof z.ZodUnion) {
    return [...new Set((current.options as z.ZodTypeAny[]).flatMap((option) => keysAt(option, path)))];
  }
  if (path.length === 0) return current instanceof z.ZodObject ? Object.keys(current.shape as object) : [];
  const [part, ...rest] = path;
  if (current instanceof z.ZodArray) return typeof part === 'number' ? keysAt(current.element as z.ZodTypeAny, rest) : [];
  if (current instanceof z.ZodRecord) return keysAt(current.valueSchema as z.ZodTypeAny, rest);
  if (!(current instanceof z.ZodObject)) return [];
  const next = (current.shape as Record<string, z.ZodTypeAny>)[String(part)];
  return next === undefined ? [] : keysAt(next, rest);
}

/** The schema inside optionals, nullables, defaults and refinements. */
function unwrapped(schema: z.ZodTypeAny): z.ZodTypeAny {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodNullable) current = current.unwrap() as z.ZodTypeAny;
    else if (current instanceof z.ZodDefault) current = current.removeDefault() as z.ZodTypeAny;
    else if (current instanceof z.ZodEffects) current = current.innerType() as z.ZodTypeAny;
    else return current;
  }
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
