import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What dependency-cruiser cannot see (`npm run lint:deps` checks the imports): domain code
 * reads no environment variable and builds no HTTP status. Configuration reaches it from the
 * composition root; status codes are the business of each capability's http.ts.
 */
const ROOT = join(import.meta.dirname, '..');
const DOMAIN = ['shared', 'actions', 'intake', 'policy', 'approvals', 'saga', 'steps', 'receipts', 'keys', 'tools', 'ports', 'limits', 'observability'];
const EDGE = /\/(handler|http)\.ts$/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const domainFiles = DOMAIN.flatMap((folder) => files(join(ROOT, 'lambdas', folder)))
  .map((path) => relative(ROOT, path))
  .filter((path) => !EDGE.test(path));

describe('domain code', () => {
  it('exists where the layout says (a rename would silently empty these checks)', () => {
    expect(domainFiles.length).toBeGreaterThan(50);
    expect(domainFiles).toContain('lambdas/intake/intake.ts');
  });

  it('reads no environment variable', () => {
    const offenders = domainFiles.filter((path) => /process\.env\b/.test(readFileSync(join(ROOT, path), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('builds no HTTP problem or status (problem documents carry statuses: only the edge makes them)', () => {
    const offenders = domainFiles
      .filter((path) => path !== 'lambdas/shared/problem.ts')
      .filter((path) => {
        const text = readFileSync(join(ROOT, path), 'utf8');
        const fromProblem = [...text.matchAll(/import \{([^}]*)\} from '[./]*shared\/problem'/g)].flatMap((m) => m[1]!.split(','));
        const values = fromProblem.map((name) => name.trim()).filter((name) => name !== '' && !name.startsWith('type '));
        return values.length > 0 || /\bstatusCode\b/.test(text);
      });
    expect(offenders).toEqual([]);
  });
});

describe('bundled code', () => {
  it('imports zod as a namespace (a named `{ z }` import makes esbuild keep all of zod, locales included, in every bundle)', () => {
    // Prepare: every runtime file under lambdas/, handlers and adapters included.
    const runtime = files(join(ROOT, 'lambdas')).map((path) => relative(ROOT, path));
    // Act
    const offenders = runtime.filter((path) => /import\s*\{[^}]*\bz\b[^}]*\}\s*from\s*'zod'/.test(readFileSync(join(ROOT, path), 'utf8')));
    // Assess
    expect(runtime.length).toBeGreaterThan(100);
    expect(offenders).toEqual([]);
  });
});
