// Review s36 (issue 10, docs a newcomer can follow): the commands the README and docs/gateway.md
// give for a clone of this repository must work after the README's own install step, and every
// `#anchor` of a relative link must exist (blocks.test.ts checks the files, not the anchors).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');

/** The `sh` blocks of a markdown file, with the line each starts on. */
function shBlocks(file: string): Array<{ line: number; text: string }> {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const blocks: Array<{ line: number; text: string }> = [];
  let start = -1;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (start === -1 && /^```(sh|bash)\b/.test(line)) start = index;
    else if (start !== -1 && line.startsWith('```')) {
      blocks.push({ line: start + 1, text: lines.slice(start + 1, index).join('\n') });
      start = -1;
    }
  }
  return blocks;
}

function gitTracked(path: string): boolean {
  try {
    execFileSync('git', ['ls-files', '--error-unmatch', path], { cwd: root, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('`npx relay serve examples/gateway.yaml` in a clone works after `pnpm install` alone, or the docs build first', () => {
  // Issue 10: "The README's two commands run as written in a clean clone". README.md's "Or a gateway from a
  // config file" and docs/gateway.md give `npx relay serve examples/gateway.yaml` for the clone. The bin
  // imports `@relay/gateway/cli`, whose default export target is dist/cli.js: gitignored, and made by no
  // install script, so after `npx pnpm@12.4.2 install` it fails with ERR_MODULE_NOT_FOUND.
  const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const gatewayPackage = JSON.parse(readFileSync(join(root, 'packages/gateway/package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
    exports: Record<string, { default: string }>;
  };
  const cliTarget = join('packages/gateway', gatewayPackage.exports['./cli']!.default);
  const buildsOnInstall = ['prepare', 'postinstall', 'install'].some((name) => rootPackage.scripts[name] !== undefined || gatewayPackage.scripts?.[name] !== undefined);
  const binWorksInClone = gitTracked(cliTarget) || buildsOnInstall;
  const problems: string[] = [];
  for (const file of ['README.md', 'docs/gateway.md', 'packages/gateway/README.md']) {
    for (const block of shBlocks(file)) {
      const lines = block.text.split('\n');
      lines.forEach((text, index) => {
        if (!/npx relay (serve|check) examples\//.test(text)) return;
        const builtBefore = lines.slice(0, index).some((earlier) => /pnpm(@[\d.]+)? (run )?build\b/.test(earlier) && !earlier.trimStart().startsWith('#'));
        if (!binWorksInClone && !builtBefore) problems.push(`${file}:${block.line + 1 + index}: ${text.trim()}`);
      });
    }
  }
  assert.equal(problems, [], `\nin a clean clone ${cliTarget} does not exist until a build:\n${problems.join('\n')}\n`);
});

/** GitHub's heading anchors of a markdown file. */
function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const match of text.matchAll(/^#{1,6}\s+(.*)$/gm)) {
    const slug = match[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

test('every #anchor of a relative link in the docs names a heading of its page', () => {
  const files = [
    'README.md',
    'CONTRIBUTING.md',
    ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`),
    ...readdirSync(join(root, 'packages')).map((name) => `packages/${name}/README.md`),
  ].filter((file) => existsSync(join(root, file)));
  const problems: string[] = [];
  for (const file of files) {
    let inCode = false;
    readFileSync(join(root, file), 'utf8').split('\n').forEach((line, index) => {
      if (line.startsWith('```')) inCode = !inCode;
      if (inCode) return;
      for (const match of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        const [path = '', anchor] = match[1]!.split('#');
        if (anchor === undefined || /^[a-z]+:/i.test(match[1]!)) continue;
        const target = path === '' ? join(root, file) : resolve(dirname(join(root, file)), decodeURI(path));
        if (target.endsWith('.md') && existsSync(target) && !anchors(target).has(anchor)) problems.push(`${file}:${index + 1}: ${match[1]}`);
      }
    });
  }
  assert.equal(problems, []);
});

test.run();
