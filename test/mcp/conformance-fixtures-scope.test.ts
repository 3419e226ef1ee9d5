import { globSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib/constructs/airlock-function';
import { synthAirlock } from '../infra/support';

/**
 * The conformance suite's `test_*` fixture tools are for `npm run test:mcp-conformance` only:
 * nothing but the local runtime's dev command (reading AIRLOCK_MCP_CONFORMANCE_FIXTURES, which
 * only scripts/mcp-conformance.mjs sets) can turn them on, and the deployed stack carries no
 * way to. (test/e2e/mcp-conformance-fixtures.test.ts proves the default runtime serves none.)
 */
const SOURCES = ['lambdas/**/*.ts', 'lib/**/*.ts', 'bin/**/*.{ts,mjs}', 'local/**/*.ts', 'scripts/**/*.mjs'];

/** Where the switch may be set; everywhere else may only pass on what it was given. */
const MAY_SET = new Set(['bin/commands/dev.ts', 'scripts/mcp-conformance.mjs']);

describe('conformance fixtures are off unless the conformance run turns them on', () => {
  it('only the dev command reads the variable, and only the conformance script sets it', () => {
    const readers: string[] = [];
    for (const file of SOURCES.flatMap((g) => globSync(g, { cwd: PROJECT_ROOT }))) {
      const text = readFileSync(join(PROJECT_ROOT, file), 'utf8');
      const code = text.split('\n').filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line));
      if (code.some((line) => line.includes('AIRLOCK_MCP_CONFORMANCE_FIXTURES'))) readers.push(file);
      // A literal `true` for the switch anywhere but its entry points would turn the fixtures on for everyone.
      if (/(mcpConformanceFixtures|conformanceFixtures)\s*:\s*true/.test(text) && !MAY_SET.has(file)) {
        // Passing the flag on (`...(x ? { flag: true } : {})`) is allowed; an unconditional `flag: true` is not.
        for (const line of text.split('\n').filter((l) => /(mcpConformanceFixtures|conformanceFixtures)\s*:\s*true/.test(l))) {
          expect(line, `${file} sets the fixtures switch unconditionally`).toMatch(/\?\s*\{[^}]*:\s*true\s*\}\s*:\s*\{\}/);
        }
      }
    }
    expect(readers.sort()).toEqual(['bin/commands/dev.ts', 'scripts/mcp-conformance.mjs']);
  });

  it('the AWS composition never sets it, and no function in the stack has a variable for it', () => {
    expect(readFileSync(join(PROJECT_ROOT, 'lambdas/composition/aws.ts'), 'utf8')).not.toMatch(/conformance/i);
    expect(readFileSync(join(PROJECT_ROOT, 'lambdas/composition/env.ts'), 'utf8')).not.toMatch(/conformance/i);
    const { template } = synthAirlock();
    const functions = Object.entries(template.findResources('AWS::Lambda::Function'));
    expect(functions.length).toBeGreaterThan(0);
    for (const [id, fn] of functions) {
      const vars = (fn as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties.Environment?.Variables ?? {};
      expect(JSON.stringify(vars), id).not.toMatch(/conformance/i);
    }
  });
});
