/**
 * Compiles a path glob to an anchored RegExp, once: `*` matches within one segment (not `/`),
 * `**` any number of whole segments (none too: `/api/**` matches `/api` and `/api/a/b`), `?`
 * one character of a segment; everything else is literal. Paths are matched as sent
 * (percent-encoded), case-sensitively, as Envoy and nginx match them.
 *
 * @example
 * globToRegExp('/api/*\/items/**').test('/api/v1/items/7/parts'); // true
 */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index]!;
    if (char === '*' && glob[index + 1] === '*') {
      const slashBefore = source.endsWith('/');
      const atEnd = index + 2 === glob.length;
      const slashAfter = glob[index + 2] === '/';
      index++;
      if (slashBefore && atEnd) {
        // "/x/**": "/x", "/x/" and everything below.
        source = `${source.slice(0, -1)}(?:/.*)?`;
      } else if (slashBefore && slashAfter) {
        // "/a/**/b": zero or more segments between.
        source = `${source.slice(0, -1)}(?:/[^/]*)*/`;
        index++;
      } else {
        source += '.*';
      }
    } else if (char === '*') {
      source += '[^/]*';
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}
