import { normalizeEscapes } from '@relay/core/transport';

/**
 * The path of a request target without its query: origin-form's part before `?`, an absolute-form
 * target's path (`GET http://api.example.com/users/7`, which servers must take, RFC 9112 §3.2.2),
 * `*` (OPTIONS) as it is.
 *
 * @example
 * targetPath('http://api.example.com/users/7?x=1'); // '/users/7'
 */
export function targetPath(target: string): string {
  if (target.charCodeAt(0) !== 0x2f) return absolutePath(target);
  const query = target.indexOf('?');
  return query < 0 ? target : target.slice(0, query);
}

/** The rare absolute-form: parsed (the relay has refused what does not parse, so this one does). */
function absolutePath(target: string): string {
  try {
    return new URL(target).pathname;
  } catch {
    return target;
  }
}

/**
 * Route templates for metric labels: `/users/:id` matches one segment per `:name`, a final `*`
 * matches the rest. Paths are never labels themselves: a path no template matches is `other`.
 */
export class RouteTable {
  private readonly patterns: RegExp[];

  constructor(readonly templates: readonly string[]) {
    this.patterns = templates.map(compile);
  }

  /**
   * The index of the first template matching the request target's path, -1 for none. The path is
   * normalised as the relay routes it (`/%75sers` is `/users`): a client must not pick its label
   * by escaping a letter.
   */
  match(target: string): number {
    const path = normalizeEscapes(targetPath(target));
    for (let index = 0; index < this.patterns.length; index++) if (this.patterns[index]!.test(path)) return index;
    return -1;
  }

  /** The label of a match: the template, `other` for none, `''` when there are no templates. */
  label(index: number): string {
    if (this.templates.length === 0) return '';
    return index < 0 ? 'other' : this.templates[index]!;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function compile(template: string, index: number): RegExp {
  if (!template.startsWith('/')) throw new TypeError(`routes[${index}] must start with "/", got ${JSON.stringify(template)}`);
  const segments = template.split('/').slice(1);
  const parts = segments.map((segment, position) => {
    if (segment === '*' && position === segments.length - 1) return '(?:/.*)?';
    if (segment.startsWith(':') && segment.length > 1) return '/[^/]+';
    if (segment.includes('*') || segment.includes(':')) {
      throw new TypeError(`routes[${index}]: "${segment}" must be a literal segment, :name, or a final *`);
    }
    return `/${escape(segment)}`;
  });
  return new RegExp(`^${parts.join('')}/?$`);
}
