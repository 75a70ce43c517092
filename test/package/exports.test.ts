import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Imports a specifier in a fresh Node and lists the packages it loaded through require (testcontainers is CJS). */
function packagesLoadedBy(specifier: string): { exports: string[]; packages: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    const mod = await import(${JSON.stringify(specifier)});
    const packages = new Set(Object.keys(createRequire(import.meta.url).cache)
      .map((p) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean));
    console.log(JSON.stringify({ exports: Object.keys(mod), packages: [...packages] }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as { exports: string[]; packages: string[] };
}

describe('the package entry points', () => {
  it('fleetjobs/testing exports the in-process double and loads no testcontainers', () => {
    const { exports, packages } = packagesLoadedBy('fleetjobs/testing');
    expect(exports).toEqual(expect.arrayContaining(['startFleetJobs', 'connectTestDevice']));
    expect(packages).not.toContain('testcontainers');
  });

  it('the main entry loads no testcontainers', () => {
    const { exports, packages } = packagesLoadedBy('fleetjobs');
    expect(exports).toContain('createFleetJobs');
    expect(packages).not.toContain('testcontainers');
  });
});
