import { formatPath, type ConfigIssue } from './config-error.js';

const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string of a parsed YAML or JSON config with
 * the environment's value (`$${` is a literal `${`). A string that is one reference and whose
 * value is a number or `true`/`false` becomes that number or boolean, so `port: ${PORT:-8080}`
 * is a port. An unset variable without a default is an issue at its path; one set to `""` reads
 * as `""` (or the default, as the shell's `:-` does).
 *
 * @example
 * interpolateEnv({ upstream: '${AUTH_URL:-http://127.0.0.1:9001}' }, process.env, issues);
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, issues: ConfigIssue[], path: Array<string | number> = []): unknown {
  if (typeof value === 'string') return interpolateString(value, env, issues, path);
  if (Array.isArray(value)) return value.map((item, index) => interpolateEnv(item, env, issues, [...path, index]));
  if (value !== null && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) result[key] = interpolateEnv(item, env, issues, [...path, key]);
    return result;
  }
  return value;
}

function interpolateString(text: string, env: NodeJS.ProcessEnv, issues: ConfigIssue[], path: Array<string | number>): unknown {
  if (!text.includes('${')) return text;
  const replaced = text.replace(reference, (match: string, name: string | undefined, fallback: string | undefined) => {
    if (name === undefined) return '${';
    const found = env[name];
    // As in the shell: `:-` also replaces an empty value, but a variable set to "" is set.
    if (found !== undefined && (found !== '' || fallback === undefined)) return found;
    if (fallback !== undefined) return fallback;
    issues.push({ path: formatPath(path), message: `environment variable ${name} is not set (write \${${name}:-default} for a default)` });
    return match;
  });
  if (!whole.test(text)) return replaced;
  if (replaced === 'true' || replaced === 'false') return replaced === 'true';
  return /^-?\d+(\.\d+)?$/.test(replaced) ? Number(replaced) : replaced;
}
