/**
 * Compiles a path glob to an anchored RegExp, once: `*` matches within one segment (not `/`),
 * `**` any number of whole segments (none too: `/api/**` matches `/api` and `/api/a/b`), `?`
 * one character of a segment; everything else is literal. Matching is case-sensitive, on the path
 * as `compileConditions` gives it: percent-encoding normalised (unreserved escapes decoded, the
 * other escapes' hex in upper case, RFC 3986 §6.2.2), because nginx matches its locations on the
 * decoded, normalised URI and upstreams decode `/%61dmin` to `/admin`.
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
