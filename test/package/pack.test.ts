import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

interface PackResult {
  files: { path: string }[];
}

/** What `npm pack` would publish (scripts skipped: the globalSetup has built dist/). */
function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return (JSON.parse(out) as PackResult[])[0]!.files.map((f) => f.path);
}

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  license: string;
  repository: { url: string };
  bin: Record<string, string>;
  main: string;
  types: string;
  exports: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

describe('the npm package', () => {
  const files = packedFiles();
  const packed = new Set(files);

  it('ships the build, the CLI, the migrations, the docs and the license, and no tests, bench, sources or maps', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'docs/testing.md']) {
      expect(packed, f).toContain(f);
    }
    expect(files.some((f) => f.startsWith('migrations/') && f.endsWith('.sql'))).toBe(true);
    const unwanted = files.filter(
      (f) =>
        /^(test|bench|examples|src|broker|agent|scratch|data|node_modules|\.ci)\//.test(f) ||
        f.startsWith('dist/test/') ||
        f.startsWith('dist/bench/') ||
        f.endsWith('.map') ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')),
    );
    expect(unwanted).toEqual([]);
  });

  it('contains every file that main, types, bin and exports name, with its type declarations', () => {
    const named = [pkg.main, pkg.types, ...Object.values(pkg.bin), ...Object.values(pkg.exports)];
    for (const path of named) expect(packed, path).toContain(normalize(path));
    for (const target of Object.values(pkg.exports)) {
      expect(packed, target).toContain(normalize(target).replace(/\.js$/, '.d.ts'));
    }
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['./testing', './testcontainers']));
  });

  it('has markdown whose relative links all resolve to files inside the package', () => {
    const broken: string[] = [];
    for (const md of files.filter((f) => f.endsWith('.md'))) {
      const text = readFileSync(md, 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue;
        const path = normalize(join(dirname(md), target!.split('#')[0]!));
        if (!packed.has(path)) broken.push(`${md} -> ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('declares Apache-2.0 with its text in LICENSE, a repository, and testcontainers as an optional peer', () => {
    expect(pkg.license).toBe('Apache-2.0');
    expect(readFileSync('LICENSE', 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(pkg.repository.url).toMatch(/^git\+https:\/\//);
    expect(pkg.peerDependenciesMeta.testcontainers?.optional).toBe(true);
  });
});
