// The rule that keeps the docs honest: every TypeScript or JavaScript code block in the docs is a
// verbatim excerpt of a file under docs/examples/, and every such file is run by a test here.
//
// Checked markdown: README.md, docs/**/*.md, packages/*/README.md, benchmarks/README.md.
//   ```ts, ```typescript, ```js, ```mjs …  must appear verbatim (after removing the fence's own
//                                          indentation) in a file under docs/examples/.
//   ```ts signature                        a type signature or an API shape, not a program: exempt.
//   ```sh, ```text, ```json, ```http …     not code to run: exempt.
//   ``` (no language)                      refused: every block says what it is.
// Also checked: every example module is imported by a test in docs/examples/ (so it runs), every
// relative link in the docs points at a file that exists, and docs/README.md lists every guide.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = resolve(new URL('../..', import.meta.url).pathname);
const examplesDir = join(root, 'docs/examples');

const checkedLanguages = new Set(['ts', 'typescript', 'tsx', 'mts', 'js', 'javascript', 'mjs', 'cjs']);
const exemptLanguages = new Set(['sh', 'bash', 'shell', 'console', 'text', 'json', 'http', 'python', 'diff', 'yaml', 'mermaid']);

function walk(dir: string, keep: (path: string) => boolean): string[] {
  return readdirSync(dir).flatMap((entry) => {
    if (entry === 'node_modules' || entry === 'dist') return [];
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? walk(path, keep) : keep(path) ? [path] : [];
  });
}

function markdownFiles(): string[] {
  const packages = readdirSync(join(root, 'packages'))
    .map((name) => join(root, 'packages', name, 'README.md'))
    .filter((path) => {
      try {
        return statSync(path).isFile();
      } catch {
        return false;
      }
    });
  return [join(root, 'README.md'), join(root, 'benchmarks/README.md'), ...walk(join(root, 'docs'), (path) => path.endsWith('.md')), ...packages];
}

interface Block {
  file: string;
  line: number;
  info: string;
  text: string;
}

/** Fenced code blocks (``` or ~~~, possibly indented in a list item), their info string and content. */
function fencedBlocks(file: string, markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i]!);
    if (open === null) continue;
    const [, indent, fence, info] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^\s*(`{3,}|~{3,})\s*$/.exec(lines[j]!);
      if (close !== null && close[1]![0] === fence[0] && close[1]!.length >= fence.length) break;
      body.push(lines[j]!.startsWith(indent) ? lines[j]!.slice(indent.length) : lines[j]!.trimStart());
    }
    blocks.push({ file, line: i + 1, info: info.trim(), text: body.join('\n') });
    i = j;
  }
  return blocks;
}

const exampleFiles = walk(examplesDir, (path) => /\.(ts|mts|mjs|js)$/.test(path));
const exampleSources = new Map(exampleFiles.map((path) => [path, readFileSync(path, 'utf8')]));

/** Where a block stops matching: the file sharing its longest run of leading lines, and the first line that differs. */
function nearestMiss(text: string): string {
  const wanted = text.split('\n');
  let best = { file: '', matched: -1 };
  for (const [path, source] of exampleSources) {
    let matched = 0;
    while (matched < wanted.length && source.includes(wanted.slice(0, matched + 1).join('\n'))) matched++;
    if (matched > best.matched) best = { file: relative(root, path), matched };
  }
  if (best.matched <= 0) return 'no example file contains its first line';
  return `${best.file} matches its first ${best.matched} line(s); line ${best.matched + 1} differs: ${JSON.stringify(wanted[best.matched])}`;
}

test('every ts/js block in the docs is a verbatim excerpt of a file under docs/examples/', () => {
  const problems: string[] = [];
  let checked = 0;
  let signatures = 0;
  for (const file of markdownFiles()) {
    for (const block of fencedBlocks(file, readFileSync(file, 'utf8'))) {
      const where = `${relative(root, block.file)}:${block.line}`;
      const [language = '', ...flags] = block.info.split(/\s+/);
      if (language === '') {
        problems.push(`${where}: a code block without a language (use ts, ts signature, sh, text …)`);
        continue;
      }
      if (checkedLanguages.has(language)) {
        if (flags.includes('signature')) {
          signatures++;
          continue;
        }
        checked++;
        if (block.text.trim() === '') problems.push(`${where}: empty block`);
        else if (![...exampleSources.values()].some((source) => source.includes(block.text))) {
          problems.push(`${where}: not found verbatim under docs/examples/ (${nearestMiss(block.text)})`);
        }
        continue;
      }
      if (!exemptLanguages.has(language)) problems.push(`${where}: unknown block language "${language}" (add it to this test's lists, or use text)`);
    }
  }
  assert.ok(checked > 50, `only ${checked} blocks checked: is the scan still finding the docs?`);
  assert.equal(problems, [], `\n${problems.join('\n')}\n`);
  console.log(`${checked} code blocks found verbatim in docs/examples/, ${signatures} marked as signatures`);
});

test('every example module under docs/examples/ is imported (or run) by a test there, so the test run executes it', () => {
  const tests = exampleFiles.filter((path) => path.endsWith('.test.ts'));
  const modules = exampleFiles.filter((path) => !path.endsWith('.test.ts'));
  // Imported (`'./quick-start.js'`), or run as a script by its path (`'docs/examples/cluster.ts'`).
  const orphans = modules.filter((module) =>
    !tests.some((testFile) => {
      const source = exampleSources.get(testFile)!;
      const path = relative(dirname(testFile), module).replace(/\.ts$/, '.js');
      return source.includes(`'${path.startsWith('.') ? path : `./${path}`}'`) || source.includes(`'${relative(root, module)}'`);
    }),
  );
  assert.equal(orphans.map((path) => relative(root, path)), [], 'example modules no test imports');
});

test('every relative link in the docs points at a file that exists', () => {
  const broken: string[] = [];
  for (const file of markdownFiles()) {
    const markdown = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const match of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
      const path = resolve(dirname(file), decodeURI(target.split('#')[0]!));
      try {
        statSync(path);
      } catch {
        broken.push(`${relative(root, file)}: ${target}`);
      }
    }
  }
  assert.equal(broken, []);
});

test('docs/README.md lists every guide', () => {
  const index = readFileSync(join(root, 'docs/README.md'), 'utf8');
  const guides = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md') && name !== 'README.md');
  assert.equal(guides.filter((name) => !index.includes(`](${name})`)), []);
});

test.run();
