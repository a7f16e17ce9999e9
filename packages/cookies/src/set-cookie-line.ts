/**
 * One `Set-Cookie` line split the way RFC 6265 §5.2 reads it: the name-value pair up to the
 * first `;`, then the attributes separated by `;`. Each attribute keeps its exact text
 * (spelling, spacing, value), so everything not edited is written back byte for byte.
 */
export class SetCookieLine {
  /** The name-value pair, untouched. */
  private readonly pair: string;
  /** Each attribute's text between two `;`, with its surrounding whitespace. */
  private readonly attributes: string[];
  private readonly original: string;
  private changed = false;

  constructor(line: string) {
    this.original = line;
    const firstSemi = line.indexOf(';');
    this.pair = firstSemi === -1 ? line : line.slice(0, firstSemi);
    this.attributes = firstSemi === -1 ? [] : line.slice(firstSemi + 1).split(';');
  }

  /**
   * The value of the last attribute named `name` (lowercase) with a non-empty value, trimmed,
   * or `undefined`: the one a browser uses (RFC 6265 §5.3: the last one wins; empty ones are ignored).
   */
  value(name: string): string | undefined {
    for (let index = this.attributes.length - 1; index >= 0; index--) {
      const text = this.attributes[index]!;
      if (attributeName(text) !== name) continue;
      const equals = text.indexOf('=');
      const value = equals === -1 ? '' : text.slice(equals + 1).trim();
      if (value !== '') return value;
    }
    return undefined;
  }

  /** True when an attribute named `name` (lowercase) is present, with or without a value. */
  has(name: string): boolean {
    return this.attributes.some((text) => attributeName(text) === name);
  }

  /** Removes every attribute named `name` (lowercase). */
  remove(name: string): void {
    for (let index = this.attributes.length - 1; index >= 0; index--) {
      if (attributeName(this.attributes[index]!) === name) {
        this.attributes.splice(index, 1);
        this.changed = true;
      }
    }
  }

  /**
   * Sets attribute `name` (lowercase) to `value`: the last one present keeps its spelling and
   * spacing and gets the new value, the others are removed; when none is present, ` Name=value`
   * is added after the last attribute.
   */
  set(name: string, spelling: string, value: string): void {
    let last = -1;
    for (let index = this.attributes.length - 1; index >= 0; index--) {
      if (attributeName(this.attributes[index]!) !== name) continue;
      if (last === -1) {
        last = index;
        continue;
      }
      this.attributes.splice(index, 1);
      last--;
      this.changed = true;
    }
    if (last === -1) {
      this.insert(` ${spelling}=${value}`);
      return;
    }
    const text = this.attributes[last]!;
    const updated = replaceValue(text, value);
    if (updated !== text) {
      this.attributes[last] = updated;
      this.changed = true;
    }
  }

  /** Adds a flag attribute (` Secure`) unless one named `name` is present already. */
  flag(name: string, spelling: string): void {
    if (!this.has(name)) this.insert(` ${spelling}`);
  }

  /** The line with the edits applied: the original string itself when nothing changed. */
  toString(): string {
    if (!this.changed) return this.original;
    return this.attributes.length === 0 ? this.pair : `${this.pair};${this.attributes.join(';')}`;
  }

  /** Inserts an attribute after the last non-blank one, so a trailing `;` stays trailing. */
  private insert(text: string): void {
    let at = this.attributes.length;
    while (at > 0 && this.attributes[at - 1]!.trim() === '') at--;
    this.attributes.splice(at, 0, text);
    this.changed = true;
  }
}

/** The lowercase name of an attribute's text (`' Domain = x'` → `'domain'`). */
function attributeName(text: string): string {
  const equals = text.indexOf('=');
  return (equals === -1 ? text : text.slice(0, equals)).trim().toLowerCase();
}

/** Replaces the value of an attribute's text, keeping the name and the spacing around the value. */
function replaceValue(text: string, value: string): string {
  const equals = text.indexOf('=');
  if (equals === -1) {
    const end = text.trimEnd().length;
    return `${text.slice(0, end)}=${value}${text.slice(end)}`;
  }
  let start = equals + 1;
  while (start < text.length && isSpace(text.charCodeAt(start))) start++;
  let end = text.length;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(0, start) + value + text.slice(end);
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}
