/**
 * Serialises a parsed `application/x-www-form-urlencoded` body (what body-parser's
 * `urlencoded()` leaves in `req.body`) back to form bytes, or returns `null` when it cannot
 * be rebuilt faithfully.
 *
 * A flat object (`extended: false`: string or string-array values) becomes what
 * `URLSearchParams` makes of it, arrays as repeated keys (`a=1&a=2`). A body with anything
 * nested or a one-item array (`extended: true`, parsed by qs) uses qs's bracket syntax
 * throughout, which qs, PHP and Rails read back the same: `a[]=1`, `a[b]=1`,
 * `a[b][]=1&a[b][]=2` for an array of scalars, `a[0][b]=1` for an array of objects. `null` becomes an empty value and `undefined` is left out, as `qs.stringify` does.
 * A nested key containing `[` or `]`, or a value that is not a scalar, array or plain object
 * (a Date, a Map, a function) cannot be told apart after a round trip: `null`.
 *
 * @example
 * encodeForm({ user: { name: 'ada', roles: ['admin', 'dev'] } });
 * // 'user%5Bname%5D=ada&user%5Broles%5D%5B%5D=admin&user%5Broles%5D%5B%5D=dev'
 */
export function encodeForm(body: unknown): string | null {
  if (!isPlainObject(body)) return null;
  const params = new URLSearchParams();
  const flat = !Object.values(body).some(needsBrackets);
  for (const key of Object.keys(body)) {
    const value = body[key];
    if (flat && isScalarArray(value)) {
      for (const item of value) appendScalar(params, key, item);
      continue;
    }
    if ((Array.isArray(value) || isPlainObject(value)) && hasBracket(key)) return null;
    if (!append(params, key, value)) return null;
  }
  return params.toString();
}

/**
 * Whether a top-level value shows the body was parsed with brackets (qs, `extended: true`): a
 * nested value, or a one-item array, which only `a[]=x` parses to (`a=x` is a string; a
 * flat parser makes arrays only of repeated keys). Such a body gets brackets on its top-level
 * arrays too, as PHP and Rails need them; a flat one keeps repeated keys, as it was sent.
 */
function needsBrackets(value: unknown): boolean {
  if (isPlainObject(value)) return true;
  return Array.isArray(value) && (value.length === 1 || !isScalarArray(value));
}

type Scalar = string | number | boolean | bigint | null | undefined;

function append(params: URLSearchParams, key: string, value: unknown): boolean {
  if (isScalar(value)) {
    appendScalar(params, key, value);
    return true;
  }
  if (Array.isArray(value)) {
    const scalars = isScalarArray(value);
    for (let index = 0; index < value.length; index++) {
      if (!append(params, scalars ? `${key}[]` : `${key}[${index}]`, value[index])) return false;
    }
    return true;
  }
  if (!isPlainObject(value)) return false;
  for (const name of Object.keys(value)) {
    if (hasBracket(name) || !append(params, `${key}[${name}]`, value[name])) return false;
  }
  return true;
}

function appendScalar(params: URLSearchParams, key: string, value: Scalar): void {
  if (value === undefined) return;
  params.append(key, value === null ? '' : String(value));
}

function isScalar(value: unknown): value is Scalar {
  const type = typeof value;
  return value === null || type === 'string' || type === 'number' || type === 'boolean' || type === 'bigint' || type === 'undefined';
}

function isScalarArray(value: unknown): value is Scalar[] {
  return Array.isArray(value) && value.every(isScalar);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function hasBracket(key: string): boolean {
  return key.includes('[') || key.includes(']');
}
